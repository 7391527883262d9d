// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Every specifier but `./x` inside src/client/, `../protocol/x` and
 * `../runs/x`, with no `..` step after them: packages, `node:` modules and
 * the server's folders.
 */
const CLIENT_IMPORT_OUTSIDE = '^(?!\\./(?!.*\\.\\.)|\\.\\./(?:protocol|runs)/(?!.*\\.\\.))';
/** The same for src/runs/ (pure, browser-safe, used by the SDK): itself and src/protocol/. */
const RUNS_IMPORT_OUTSIDE = '^(?!\\./(?!.*\\.\\.)|\\.\\./protocol/(?!.*\\.\\.))';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test-results/**', 'web/vendor/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        queueMicrotask: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        performance: 'readonly',
        AbortController: 'readonly',
        fetch: 'readonly',
        window: 'readonly',
        document: 'readonly',
        localStorage: 'readonly',
        sessionStorage: 'readonly',
        WebSocket: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': ['error', { allow: ['warn', 'error'] }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // The client SDK builds for browsers with no Node types: it may import only
    // its own files, the wire contract in src/protocol/ and the pure run
    // modules in src/runs/ (STYLE.md, rule 9).
    files: ['src/client/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: CLIENT_IMPORT_OUTSIDE,
              message: 'src/client/ may import only from src/client/, src/protocol/ and src/runs/.',
            },
          ],
        },
      ],
    },
  },
  {
    // src/runs/ is pure and in the SDK's build: no Node, no server folders.
    files: ['src/runs/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: RUNS_IMPORT_OUTSIDE,
              message: 'src/runs/ may import only from src/runs/ and src/protocol/.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['scripts/**', 'bench/**', 'src/cli/**', 'test/**', 'web/**', 'examples/**'],
    rules: { 'no-console': 'off' },
  },
);
