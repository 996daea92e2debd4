#!/usr/bin/env bash
# The platform's protos give exactly the endpoint table of API.md: every row's
# method, path, policy and success status is an operation of the generated
# OpenAPI document, and the document has no operation the table lacks.
# API.md lives in the shared folder beside the repository (../shared).
set -u
cd "$(dirname "$0")/.."
api=${PANTHERA_API_MD:-../shared/API.md}
if [ ! -f "$api" ]; then
	echo "SKIP: $api not found (the shared folder sits beside the repository)"
	exit 77
fi
command -v node >/dev/null 2>&1 || { echo "SKIP: node is not installed (make deps)"; exit 77; }
exec node - "$api" gen/panthera.openapi.json <<'JS'
const fs = require('fs');
const [apiPath, docPath] = process.argv.slice(2);
const doc = JSON.parse(fs.readFileSync(docPath, 'utf8'));
const rows = fs.readFileSync(apiPath, 'utf8').split('\n')
  .map((l) => l.match(/^\| (GET|POST|PUT|PATCH|DELETE) (\/\S+) \| (\w+) \| (\d{3})/))
  .filter(Boolean);
let bad = 0;
const seen = new Set();
for (const [, method, path, policy, status] of rows) {
  const op = (doc.paths[path] || {})[method.toLowerCase()];
  const where = `${method} ${path}`;
  if (!op) { console.log(`FAIL: ${where}: no such operation in ${docPath}`); bad++; continue; }
  seen.add(where);
  if (op['x-panthera-access'] !== policy) {
    console.log(`FAIL: ${where}: policy ${op['x-panthera-access']}, API.md says ${policy}`); bad++;
  }
  if (!(status in op.responses)) {
    console.log(`FAIL: ${where}: no ${status} response (has ${Object.keys(op.responses)})`); bad++;
  }
}
for (const [path, item] of Object.entries(doc.paths)) {
  for (const method of Object.keys(item)) {
    const where = `${method.toUpperCase()} ${path}`;
    if (!seen.has(where)) { console.log(`FAIL: ${where}: in the document but not in API.md`); bad++; }
  }
}
if (rows.length < 40) { console.log(`FAIL: only ${rows.length} rows read from API.md`); bad++; }
console.log(`api-contract: ${rows.length} rows of API.md checked, ${bad} problems`);
process.exit(bad ? 1 : 0);
JS
