// Calls every method of openrpc.json with @open-rpc/client-js against a running gateway.
//
//   node call-all.mjs <openrpc.json> <gateway base URL> <calls.json>
//
// calls.json: {"<method>": {"params": {...}, "headers": {...}}, ...}; every method of the document must have an entry
// (a method without one is reported as {"ok": false, "missing": true}). Methods are called one after the other, in
// the document's order, each through an HTTPTransport to <base URL>/rpc with the entry's headers. Prints a JSON
// object: method -> {"ok": true, "result": ...} or {"ok": false, "error": {"code", "message", "data"}}.
import { readFileSync } from "node:fs";
import { Client, HTTPTransport, RequestManager } from "@open-rpc/client-js";

const [documentPath, baseUrl, callsPath] = process.argv.slice(2);
const document = JSON.parse(readFileSync(documentPath, "utf8"));
const calls = JSON.parse(readFileSync(callsPath, "utf8"));
const url = baseUrl.replace(/\/$/, "") + "/rpc";

const summary = {};
for (const method of document.methods) {
  const call = calls[method.name];
  if (call === undefined) {
    summary[method.name] = { ok: false, missing: true };
    continue;
  }
  const transport = new HTTPTransport(url, { headers: call.headers ?? {} });
  const client = new Client(new RequestManager([transport]));
  try {
    const request = call.params === undefined ? { method: method.name } : { method: method.name, params: call.params };
    const result = await client.request(request, 10000);
    summary[method.name] = { ok: true, result };
  } catch (error) {
    summary[method.name] = { ok: false, error: { code: error.code, message: error.message, data: error.data } };
  } finally {
    client.close();
  }
}
process.stdout.write(JSON.stringify(summary) + "\n");
