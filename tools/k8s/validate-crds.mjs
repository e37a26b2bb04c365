#!/usr/bin/env node
// Validate the custom resources of rendered manifests against their schemas.
//
//   kubectl kustomize deploy/k8s/overlays/prod | node tools/k8s/validate-crds.mjs -
//   node tools/k8s/validate-crds.mjs rendered.yaml [more.yaml ...]
//
// kubernetes-validate checks the built-in kinds and skips CRDs; this covers
// the CRDs we ship (Argo Rollouts, Prometheus Operator, External Secrets,
// Karpenter) in two passes:
//   1. the models' JSON-schema validators (types, enums, required fields);
//   2. a TypeScript type check of each document against the models' type
//      declarations, which rejects unknown fields (a typo such as
//      "setWieght" or "sucessCondition" is an error, not a silent no-op).
// A CRD kind without a model here is an error too, so nothing slips through.
// Exit 0 when every document is valid, 1 otherwise; one line per document.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAll } from "js-yaml";
import ts from "typescript";

const MODELS = {
  "argoproj.io/v1alpha1/Rollout": "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Rollout",
  "argoproj.io/v1alpha1/AnalysisTemplate": "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate",
  "argoproj.io/v1alpha1/ClusterAnalysisTemplate": "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/ClusterAnalysisTemplate",
  "monitoring.coreos.com/v1/PodMonitor": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
  "monitoring.coreos.com/v1/PrometheusRule": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
  "monitoring.coreos.com/v1/Probe": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/Probe",
  "monitoring.coreos.com/v1/ServiceMonitor": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
  "karpenter.sh/v1/NodePool": "@kubernetes-models/karpenter/karpenter.sh/v1/NodePool",
  "karpenter.k8s.aws/v1/EC2NodeClass": "@kubernetes-models/karpenter/karpenter.k8s.aws/v1/EC2NodeClass",
  // The models know external-secrets.io/v1beta1 only; v1 (served since ESO
  // 0.16, v1beta1 deprecated) has the same fields for what we use, so v1
  // documents are checked against the v1beta1 schema (see SCHEMA_VERSION).
  "external-secrets.io/v1/ExternalSecret": "@kubernetes-models/external-secrets/external-secrets.io/v1beta1/ExternalSecret",
  "external-secrets.io/v1/SecretStore": "@kubernetes-models/external-secrets/external-secrets.io/v1beta1/SecretStore",
};
const SCHEMA_VERSION = { "external-secrets.io/v1": "external-secrets.io/v1beta1" };

function isBuiltIn(doc) {
  const group = doc.apiVersion.includes("/") ? doc.apiVersion.split("/")[0] : "";
  return !group.includes(".") || group.endsWith(".k8s.io");
}

const args = process.argv.slice(2);
if (args.length === 0) {
  console.error("usage: validate-crds.mjs FILE|- [FILE ...]");
  process.exit(2);
}

const docs = [];
for (const file of args) {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  for (const doc of loadAll(text)) {
    if (doc && !isBuiltIn(doc)) docs.push(doc);
  }
}
const schemaDoc = (doc) =>
  SCHEMA_VERSION[doc.apiVersion] ? { ...doc, apiVersion: SCHEMA_VERSION[doc.apiVersion] } : doc;
{
}

const errors = new Map(); // index -> [messages]
const fail = (i, msg) => errors.set(i, [...(errors.get(i) ?? []), msg]);

// Pass 1: JSON-schema validators shipped with the models.
const checkable = [];
for (const [i, doc] of docs.entries()) {
  const spec = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!spec) {
    fail(i, "no schema here for this kind");
    continue;
  }
  const mod = await import(spec);
  try {
    new mod[doc.kind](schemaDoc(doc)).validate();
  } catch (err) {
    fail(i, err.message);
  }
  checkable.push([i, spec]);
}

// Pass 2: excess-property check with the TypeScript compiler.
if (checkable.length > 0) {
  const dir = mkdtempSync(join(tmpdir(), "validate-crds-"));
  const file = join(dir, "check.mts");
  const lines = [];
  const lineOf = new Map();
  for (const [i, spec] of checkable) {
    // A package with .mjs entry points ships .d.ts next to the .js ones.
    const dts = fileURLToPath(import.meta.resolve(spec)).replace(/\.mjs$/, ".js");
    lines.push(`import type { I${docs[i].kind} as T${i} } from ${JSON.stringify(dts)};`);
  }
  for (const [i] of checkable) {
    lineOf.set(lines.length, i);
    lines.push(`export const doc${i}: T${i} = ${JSON.stringify(schemaDoc(docs[i]))};`);
  }
  writeFileSync(file, lines.join("\n") + "\n");
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  });
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, " ");
    if (d.file && d.file.fileName === file && d.start !== undefined) {
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      const i = lineOf.get(line);
      if (i !== undefined) {
        fail(i, msg);
        continue;
      }
    }
    // A diagnostic outside the documents means the check itself is broken.
    fail(-1, msg);
  }
  rmSync(dir, { recursive: true, force: true });
}

for (const [i, doc] of docs.entries()) {
  const name = `${doc.apiVersion}/${doc.kind} ${doc.metadata?.name ?? "?"}`;
  if (errors.has(i)) console.log(`INVALID ${name}: ${errors.get(i).join("; ")}`);
  else console.log(`VALID ${name}`);
}
if (errors.has(-1)) console.log(`ERROR type check: ${errors.get(-1).join("; ")}`);
const invalid = [...errors.keys()].filter((i) => i >= 0).length;
console.log(`${docs.length - invalid} valid, ${errors.size} failed`);
process.exit(errors.size === 0 && docs.length > 0 ? 0 : 1);
