// Validate custom resources against their CRD schemas, as compiled into the @kubernetes-models
// packages (installed by scripts/install_k8s_tools.sh into .tools/crd-validate).
//   node validate.mjs objects.json       (a JSON array of objects)
// Prints one line per object, exits 1 when any fails or has a kind with no schema here.
// The compiled validators check types, enums, formats and required fields but allow unknown
// fields; scripts/k8s_check.py adds TypeScript's excess-property check for those.
import { readFileSync } from "node:fs";

const PACKAGES = {
  "argoproj.io": "@kubernetes-models/argo-rollouts",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
};

const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const obj of objects) {
  const [group, version] = obj.apiVersion.split("/");
  const where = `${obj.kind}/${obj.metadata?.name}`;
  const pkg = PACKAGES[group];
  if (!pkg) {
    console.log(`FAIL ${where}: no CRD schema for ${obj.apiVersion}`);
    failed++;
    continue;
  }
  let Model;
  try {
    Model = (await import(`${pkg}/${group}/${version}/${obj.kind}`))[obj.kind];
  } catch (err) {
    console.log(`FAIL ${where}: no schema for ${obj.apiVersion} ${obj.kind} (${err.code ?? err})`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`ok   ${where} (${obj.apiVersion})`);
  } catch (err) {
    console.log(`FAIL ${where}: ${err.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
