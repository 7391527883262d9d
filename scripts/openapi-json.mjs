// Generates docs/openapi.json from docs/openapi.yaml, the source: the server
// serves the JSON (no YAML parser at runtime), and test/e2e/openapi.test.ts
// fails when the two differ. Run after every change to the YAML:
//   node scripts/openapi-json.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { parse } from 'yaml';

const yamlPath = fileURLToPath(new URL('../docs/openapi.yaml', import.meta.url));
const jsonPath = fileURLToPath(new URL('../docs/openapi.json', import.meta.url));

const document = parse(readFileSync(yamlPath, 'utf8'));
// Formatted as `prettier --check .` wants it, so lint passes on the generated file.
const options = await prettier.resolveConfig(jsonPath);
const text = await prettier.format(JSON.stringify(document), { ...options, filepath: jsonPath });
writeFileSync(jsonPath, text);
console.log(`wrote ${jsonPath}`);
