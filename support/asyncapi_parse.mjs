// Parse and validate an AsyncAPI document with the official parser (@asyncapi/parser,
// pinned in package.json): `node support/asyncapi_parse.mjs docs/asyncapi.yaml`.
// Prints one JSON object: {"asyncapi", "errors": [...], "warnings": [...]}, each
// diagnostic with its rule code, message and path. Exits 1 when the document has errors.
import { readFile } from "node:fs/promises";
import { Parser, fromFile } from "@asyncapi/parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node support/asyncapi_parse.mjs <asyncapi.yaml>");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
const shown = (d) => ({ code: String(d.code), message: d.message, path: d.path.join("/") });
// Spectral's severities: 0 error, 1 warning, 2 information, 3 hint.
const errors = diagnostics.filter((d) => d.severity === 0).map(shown);
const warnings = diagnostics.filter((d) => d.severity === 1).map(shown);
const summary = {
  asyncapi: document ? document.version() : null,
  channels: document ? document.channels().all().map((c) => c.address()) : [],
  operations: document ? document.operations().all().length : 0,
  messages: document ? document.components().messages().all().length : 0,
  errors,
  warnings,
};
console.log(JSON.stringify(summary, null, 2));
process.exit(document && errors.length === 0 ? 0 : 1);
