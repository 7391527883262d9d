/**
 * Registers a table of options on a commander command: the flag, its value
 * placeholder, repetition, and the `--help` line, all from the table
 * (`helpText`). Values are left as text: `readOptions` checks them, so a flag
 * and its environment variable go through the same reader.
 */
import { Option, type Command } from 'commander';
import { helpText, usage, type OptionSpec } from '../options/option-spec.js';

export function registerOptions(command: Command, specs: readonly OptionSpec[]): Command {
  for (const spec of specs) {
    const option = new Option(usage(spec), helpText(spec));
    if (spec.repeatable === true) {
      option.argParser((value: string, previous?: string[]) => [...(previous ?? []), value]);
    }
    command.addOption(option);
  }
  return command;
}
