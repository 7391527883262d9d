/**
 * Registers a table of options on a commander command: the flag, its value
 * placeholder, repetition, and the `--help` line, all from the table
 * (`helpText`). Values are left as text: `readOptions` checks them, so a flag
 * and its environment variable go through the same reader.
 */
import { Option, type Command } from 'commander';
import { helpText, type OptionSpec } from '../options/option-spec.js';

export function registerOptions(command: Command, specs: readonly OptionSpec[]): Command {
  for (const spec of specs) {
    const help = helpText(spec);
    if (spec.kind === 'boolean') {
      command.addOption(new Option(spec.flag, help));
    } else if (spec.repeatable === true) {
      command.addOption(
        new Option(`${spec.flag} <value>`, help).argParser((value: string, previous?: string[]) => [
          ...(previous ?? []),
          value,
        ]),
      );
    } else {
      command.addOption(new Option(`${spec.flag} <value>`, help));
    }
  }
  return command;
}
