/**
 * Fenced code blocks of a Markdown document, so a test can run the very code
 * a document shows and the two cannot drift apart.
 */

/**
 * The bodies of the fenced blocks of `language` (the word after the opening
 * fence), in document order, each ending with a newline.
 *
 * @example
 * const [nodeSnippet] = fencedBlocks(readFileSync('README.md', 'utf8'), 'ts');
 */
export function fencedBlocks(markdown: string, language: string): string[] {
  const blocks: string[] = [];
  const fence = /^```([\w-]*)[^\n]*\n([\s\S]*?)^```[ \t]*$/gm;
  for (const match of markdown.matchAll(fence)) {
    if (match[1] === language) blocks.push(match[2] as string);
  }
  return blocks;
}

/** A shell command of a block and the comment lines right after it (its shown output). */
export interface ShellCommand {
  /** The command, continuation lines (`\` at the end) joined as the shell would. */
  command: string;
  /** Comment lines that follow the command, without `# `. */
  output: string[];
}

/** Splits a shell block into its commands. */
export function shellCommands(block: string): ShellCommand[] {
  const commands: ShellCommand[] = [];
  let pending = '';
  for (const line of block.split('\n')) {
    if (pending === '' && line.startsWith('#')) {
      commands.at(-1)?.output.push(line.replace(/^#\s?/, ''));
      continue;
    }
    if (pending === '' && line.trim() === '') continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    commands.push({ command: pending + line, output: [] });
    pending = '';
  }
  return commands;
}
