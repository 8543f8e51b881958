// ESLint (flat config): typescript-eslint's recommended rules over every TypeScript file.
// `npm run lint` runs it after tsc and before prettier's check; CI runs `npm run lint`.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "dist-bench/", "bench/results/", "clients/", "web/", "**/*.js", "**/*.mjs", "**/*.cjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // `_name` marks a parameter or binding kept for its position or shape.
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // A timer handle declared before the callback that clears it, assigned after: not a const.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
      // Control characters in patterns are deliberate here: path checks, terminal escapes.
      "no-control-regex": "off",
    },
  },
);
