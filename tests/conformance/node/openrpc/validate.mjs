// Validates an OpenRPC document (the gateway's openrpc.json):
//   1. against the OpenRPC meta-schema (@open-rpc/meta-schema, the version pinned in package.json);
//   2. each JSON Schema in it (components.schemas, every param's and result's schema) as JSON Schema draft-07,
//      with ajv in strict mode: a keyword draft-07 does not know (prefixItems, $defs, unevaluatedProperties, ...)
//      or a $ref that does not resolve is an error.
// Usage: node validate.mjs PATH. Exit 0: valid; 1: invalid (the errors are printed); 2: usage or unreadable file.
import { readFileSync } from "node:fs";
import Ajv from "ajv"; // ajv's default export validates JSON Schema draft-07
import addFormats from "ajv-formats";
import metaSchemaPackage from "@open-rpc/meta-schema";
import jsonSchemaPackage from "@json-schema-tools/meta-schema";

const path = process.argv[2];
if (!path || process.argv.length > 3) {
  console.error("usage: node validate.mjs OPENRPC_JSON");
  process.exit(2);
}
let doc;
try {
  doc = JSON.parse(readFileSync(path, "utf8"));
} catch (error) {
  console.error(`${path}: ${error.message}`);
  process.exit(2);
}

const problems = [];
const show = (errors) => JSON.stringify(errors, null, 2);

// 1. The meta-schema, as @open-rpc/schema-utils-js uses it: the OpenRPC document schema, whose JSON Schemas are
// described by json-schema.tools' meta-schema (https://meta.json-schema.tools, a draft-07 dialect). Their "$schema"
// is that URI, which ajv does not know by name, so it is left out; the schemas themselves are draft-07.
const { $schema: _dialect, ...metaSchema } = metaSchemaPackage.openrpcDocument;
const { $schema: _itself, $id: jsonSchemaId, ...jsonSchemaMeta } = jsonSchemaPackage.jsonSchema;
const metaAjv = new Ajv({ allErrors: true, strict: false });
addFormats(metaAjv);
// referenced both as https://meta.json-schema.tools and as its $id, https://meta.json-schema.tools/
metaAjv.addSchema(jsonSchemaMeta, jsonSchemaId.replace(/\/$/, ""));
metaAjv.addSchema(jsonSchemaMeta, jsonSchemaId);
const validateDocument = metaAjv.compile(metaSchema);
if (!validateDocument(doc)) {
  problems.push(`meta-schema: ${show(validateDocument.errors)}`);
}

// 2. Every schema, as draft-07. "#/components/schemas/X" refs point into the document, so each schema is compiled
// with the document's components beside it (an extra keyword the strict mode is told about).
const warnings = [];
const logger = { log: () => {}, warn: (message) => warnings.push(String(message)), error: (message) => warnings.push(String(message)) };
const schemaAjv = new Ajv({ allErrors: true, strict: true, strictTypes: true, strictTuples: true, logger });
addFormats(schemaAjv);
schemaAjv.addKeyword({ keyword: "components", schemaType: "object" });
const components = doc?.components ?? {};
const schemas = [];
for (const [name, schema] of Object.entries(components.schemas ?? {})) {
  schemas.push([`components.schemas.${name}`, schema]);
}
for (const method of Array.isArray(doc?.methods) ? doc.methods : []) {
  for (const param of method?.params ?? []) {
    schemas.push([`${method.name} param ${param?.name}`, param?.schema]);
  }
  if (method?.result) schemas.push([`${method.name} result`, method.result.schema]);
}
// ajv's draft-07 mode still accepts a few later keywords ($defs above all): those are looked for explicitly.
const LATER_KEYWORDS = new Set([
  "$defs", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor", "$vocabulary",
  "prefixItems", "unevaluatedProperties", "unevaluatedItems", "dependentRequired", "dependentSchemas",
  "minContains", "maxContains", "contentSchema",
]);
const DATA_KEYWORDS = new Set(["enum", "const", "default", "examples"]);
const NAMED_SCHEMAS = new Set(["properties", "patternProperties", "definitions", "dependencies"]);
function laterKeywords(schema, where) {
  if (Array.isArray(schema)) return schema.flatMap((item, i) => laterKeywords(item, `${where}/${i}`));
  if (typeof schema !== "object" || schema === null) return [];
  return Object.entries(schema).flatMap(([key, value]) => {
    if (LATER_KEYWORDS.has(key)) return [`${where}/${key}: not a JSON Schema draft-07 keyword`];
    if (DATA_KEYWORDS.has(key)) return [];
    if (NAMED_SCHEMAS.has(key) && typeof value === "object" && value !== null) {
      return Object.entries(value).flatMap(([name, sub]) => laterKeywords(sub, `${where}/${key}/${name}`));
    }
    return laterKeywords(value, `${where}/${key}`);
  });
}
for (const [where, schema] of schemas) {
  problems.push(...laterKeywords(schema, where));
  warnings.length = 0;
  try {
    if (typeof schema === "boolean") continue;
    if (typeof schema !== "object" || schema === null) throw new Error("not a JSON Schema");
    schemaAjv.compile({ ...schema, components });
    schemaAjv.removeSchema();
  } catch (error) {
    problems.push(`${where}: ${error.message}`);
  }
  for (const warning of warnings) problems.push(`${where}: ${warning}`);
}

if (problems.length) {
  console.error(`${path}: invalid\n${problems.join("\n")}`);
  process.exit(1);
}
console.log(`${path}: valid OpenRPC ${doc.openrpc}, ${doc.methods.length} methods, ${schemas.length} schemas valid as draft-07`);
