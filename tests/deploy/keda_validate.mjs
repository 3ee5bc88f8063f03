// Validates KEDA objects with the validators of @kubernetes-models/keda (tests/deploy/keda_schema.py).
// argv[2]: the installed package's directory; stdin: a JSON array of objects; stdout: a JSON array of
// problems ("Kind/name: message"), empty when every object is valid.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const packageDir = process.argv[2];
const models = await import(pathToFileURL(join(packageDir, "keda.sh", "v1alpha1", "index.js")).href);
const documents = JSON.parse(readFileSync(0, "utf8"));
const problems = [];
for (const document of documents) {
  const where = `${document.kind}/${document.metadata?.name}`;
  const Model = models[document.kind];
  if (document.apiVersion !== "keda.sh/v1alpha1" || typeof Model !== "function") {
    problems.push(`${where}: not a keda.sh/v1alpha1 kind this package knows (${document.apiVersion})`);
    continue;
  }
  try {
    new Model(document).validate();
  } catch (error) {
    problems.push(`${where}: ${error.message}`);
  }
}
process.stdout.write(JSON.stringify(problems));
