// validate-openapi.mjs -- docs/openapi.json against the OpenAPI 3.1 schema
// and its own references, with @apidevtools/swagger-parser (a real
// validator). Prints "openapi: valid (N operations)" or the errors; exit 1
// when invalid. Usage: node validate-openapi.mjs PATH
import SwaggerParser from "@apidevtools/swagger-parser";

const path = process.argv[2];
try {
  const api = await SwaggerParser.validate(path);
  let n = 0;
  const ids = new Set();
  for (const item of Object.values(api.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      n++;
      if (!op.operationId) throw new Error(`${method} without operationId`);
      if (ids.has(op.operationId)) throw new Error(`duplicate operationId ${op.operationId}`);
      ids.add(op.operationId);
    }
  }
  console.log(`openapi: valid ${api.openapi} (${n} operations)`);
} catch (e) {
  console.error(`openapi: INVALID: ${e.message}`);
  process.exit(1);
}
