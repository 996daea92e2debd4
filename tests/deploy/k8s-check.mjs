// tests/deploy/k8s-check.mjs - offline checks of Panthera's Kubernetes manifests.
//
//   node k8s-check.mjs MODELS_DIR kustomize DIR...   every kustomization.yaml under
//       each DIR: the files it lists exist; every object of its resources
//       (followed into the directories it names) passes its schema, and the
//       set passes the consistency checks below
//   node k8s-check.mjs MODELS_DIR rendered FILE...   the same checks on a rendered
//       stream (`kubectl kustomize DIR > FILE`), patches applied
//
// MODELS_DIR holds node_modules/ with kubernetes-models (the Kubernetes
// OpenAPI schemas compiled for ajv: types, required fields, enums, formats)
// and yaml. Prints one line per problem and exits 1 if there was one, 0 else.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modelsDir, mode, ...args] = process.argv.slice(2);
if (!modelsDir || !["kustomize", "rendered"].includes(mode) || args.length === 0) {
  console.error("usage: k8s-check.mjs MODELS_DIR kustomize|rendered PATH...");
  process.exit(2);
}
const nm = path.resolve(modelsDir, "node_modules");
const YAML = await import(pathToFileURL(path.join(nm, "yaml/dist/index.js")).href);

let problems = 0;
function problem(where, msg) {
  console.log(`FAIL: ${where}: ${msg}`);
  problems++;
}

// The Secrets the manifests read but never create: made by the operator
// (docs/operations.md, "Running on Kubernetes").
const EXTERNAL_SECRETS = new Set(["panthera-secrets", "panthera-signing-keys"]);
const SERVICES = ["auth", "catalog", "inventory", "orders", "payments", "cart",
  "analytics", "reviews", "notifications"];

function readDocs(file) {
  const docs = [];
  for (const d of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
    if (d.errors.length) {
      problem(file, `YAML: ${d.errors[0].message}`);
      continue;
    }
    const obj = d.toJS();
    if (obj != null) docs.push({ obj, where: file });
  }
  return docs;
}

// The model class of apiVersion/kind: kubernetes-models/<group>/<version>/<Kind>.js
async function modelOf(apiVersion, kind) {
  const parts = String(apiVersion).split("/");
  const rel = parts.length === 1 ? ["v1", kind] : [parts[0], parts[1], kind];
  if (parts.length === 1 && apiVersion !== "v1") return null;
  const file = path.join(nm, "kubernetes-models", ...rel) + ".js";
  if (!fs.existsSync(file)) return null;
  const mod = await import(pathToFileURL(file).href);
  return mod[kind] ?? null;
}

async function validateSchema(docs) {
  for (const { obj, where } of docs) {
    const id = `${where}: ${obj.kind}/${obj.metadata?.name}`;
    if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) {
      problem(where, "an object without apiVersion, kind or metadata.name");
      continue;
    }
    const Model = await modelOf(obj.apiVersion, obj.kind);
    if (Model == null) {
      problem(id, `no schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      problem(id, e.message);
    }
  }
}

const matches = (sel, labels) =>
  sel != null && Object.keys(sel).length > 0 &&
  Object.entries(sel).every(([k, v]) => labels?.[k] === v);

// What holds together across objects: selectors that select, probes and
// limits on every container, references that resolve.
function consistency(docs, label) {
  const objs = docs.map((d) => d.obj);
  const byKind = (k) => objs.filter((o) => o.kind === k);
  const workloads = objs.filter((o) => ["Deployment", "StatefulSet"].includes(o.kind));
  const podLabels = workloads.map((w) => w.spec?.template?.metadata?.labels ?? {});
  const configMaps = new Set(byKind("ConfigMap").map((o) => o.metadata.name));
  const seen = new Set();
  for (const o of objs) {
    const key = `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
    if (seen.has(key)) problem(label, `${key} defined twice`);
    seen.add(key);
  }
  for (const w of workloads) {
    const id = `${label}: ${w.kind}/${w.metadata.name}`;
    const spec = w.spec?.template?.spec ?? {};
    if (!matches(w.spec?.selector?.matchLabels, w.spec?.template?.metadata?.labels))
      problem(id, "its selector does not select its own pods");
    if (spec.securityContext?.runAsNonRoot !== true)
      problem(id, "pods not marked runAsNonRoot");
    const secretVolumes = (spec.volumes ?? []).filter((v) => v.secret).map((v) => v.secret.secretName);
    for (const s of secretVolumes)
      if (!EXTERNAL_SECRETS.has(s)) problem(id, `volume of an unknown Secret ${s}`);
    const all = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
    for (const c of all) {
      const cid = `${id} container ${c.name}`;
      for (const r of ["requests", "limits"])
        for (const k of ["cpu", "memory"])
          if (c.resources?.[r]?.[k] == null) problem(cid, `no resources.${r}.${k}`);
      if (c.securityContext?.allowPrivilegeEscalation !== false)
        problem(cid, "allowPrivilegeEscalation is not false");
      if (!(c.securityContext?.capabilities?.drop ?? []).includes("ALL"))
        problem(cid, "capabilities not dropped");
      for (const e of c.envFrom ?? []) {
        if (e.configMapRef && !configMaps.has(e.configMapRef.name))
          problem(cid, `envFrom names a ConfigMap not defined here: ${e.configMapRef.name}`);
        if (e.secretRef && !EXTERNAL_SECRETS.has(e.secretRef.name))
          problem(cid, `envFrom names an unknown Secret: ${e.secretRef.name}`);
      }
      for (const e of c.env ?? []) {
        const s = e.valueFrom?.secretKeyRef?.name;
        if (s && !EXTERNAL_SECRETS.has(s)) problem(cid, `env ${e.name} from an unknown Secret ${s}`);
      }
    }
    for (const c of spec.containers ?? []) {
      const cid = `${id} container ${c.name}`;
      if (!c.readinessProbe) problem(cid, "no readinessProbe");
      if (!c.livenessProbe) problem(cid, "no livenessProbe");
      const ports = (c.ports ?? []).map((p) => p.containerPort);
      for (const pr of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        const cmd = c[pr]?.exec?.command;
        if (!cmd || !String(cmd[0]).startsWith("panthera")) continue;
        // our exec probe: the container's own binary, asking its own port
        if (cmd[0] !== c.command?.[0] || cmd[1] !== "--health-check")
          problem(cid, `${pr} is not "${c.command?.[0]} --health-check URL"`);
        const port = Number(/:(\d+)$/.exec(cmd[2] ?? "")?.[1]);
        if (!ports.includes(port)) problem(cid, `${pr} asks port ${port}, not a port of the container`);
      }
      for (const pr of ["readinessProbe", "livenessProbe"]) {
        const p = c[pr]?.httpGet?.port;
        if (typeof p === "string" && !(c.ports ?? []).some((x) => x.name === p))
          problem(cid, `${pr} names port ${p}, which the container does not have`);
      }
    }
  }
  for (const s of byKind("Service")) {
    const id = `${label}: Service/${s.metadata.name}`;
    const i = podLabels.findIndex((l) => matches(s.spec?.selector, l));
    if (i < 0) {
      problem(id, "its selector matches no pods");
      continue;
    }
    const cports = (workloads[i].spec.template.spec.containers ?? []).flatMap((c) => c.ports ?? []);
    for (const p of s.spec.ports ?? [])
      if (typeof p.targetPort === "string" && !cports.some((c) => c.name === p.targetPort))
        problem(id, `targetPort ${p.targetPort} is no port of its pods`);
  }
  for (const h of byKind("HorizontalPodAutoscaler")) {
    const t = h.spec?.scaleTargetRef;
    if (!workloads.some((w) => w.kind === t?.kind && w.metadata.name === t?.name))
      problem(`${label}: HorizontalPodAutoscaler/${h.metadata.name}`, `scales ${t?.kind}/${t?.name}, not defined here`);
  }
  for (const p of byKind("PodDisruptionBudget"))
    if (!podLabels.some((l) => matches(p.spec?.selector?.matchLabels, l)))
      problem(`${label}: PodDisruptionBudget/${p.metadata.name}`, "its selector matches no pods");
  for (const n of byKind("NetworkPolicy")) {
    const id = `${label}: NetworkPolicy/${n.metadata.name}`;
    const sel = n.spec?.podSelector?.matchLabels;
    if (sel && Object.keys(sel).length && !podLabels.some((l) => matches(sel, l)))
      problem(id, "its podSelector matches no pods");
    const peers = [...(n.spec?.ingress ?? []).flatMap((r) => r.from ?? []),
      ...(n.spec?.egress ?? []).flatMap((r) => r.to ?? [])];
    for (const peer of peers) {
      const ps = peer.podSelector?.matchLabels;
      if (ps && !peer.namespaceSelector && !podLabels.some((l) => matches(ps, l)))
        problem(id, `a peer selects no pods: ${JSON.stringify(ps)}`);
    }
  }
  return { objs, workloads };
}

// What the base must hold: the list.
function completeness(objs, label) {
  const has = (kind, name) => objs.some((o) => o.kind === kind && o.metadata.name === name);
  for (const n of [...SERVICES, "gateway"])
    for (const k of ["Deployment", "Service"])
      if (!has(k, `panthera-${n}`)) problem(label, `no ${k} panthera-${n}`);
  for (const n of ["gateway", "catalog"])
    if (!has("HorizontalPodAutoscaler", `panthera-${n}`)) problem(label, `no HPA of panthera-${n}`);
  if (!objs.some((o) => o.kind === "PodDisruptionBudget")) problem(label, "no PodDisruptionBudget");
  if (!objs.some((o) => o.kind === "NetworkPolicy" && Object.keys(o.spec?.podSelector ?? {}).length === 0 &&
      (o.spec.policyTypes ?? []).includes("Ingress") && !o.spec.ingress))
    problem(label, "no default-deny NetworkPolicy");
  if (!has("ConfigMap", "panthera-config")) problem(label, "no ConfigMap panthera-config");
  const gw = objs.find((o) => o.kind === "Deployment" && o.metadata.name === "panthera-gateway");
  const gwc = gw?.spec?.template?.spec?.containers?.[0];
  if (gwc && ((gwc.envFrom ?? []).some((e) => e.secretRef) || (gwc.env ?? []).some((e) => e.valueFrom?.secretKeyRef)))
    problem(label, "the gateway reads a Secret: it holds no database URL nor key");
}

// The files a kustomization lists, and its resources' objects.
function kustomization(dir, visited = new Set()) {
  const file = path.join(dir, "kustomization.yaml");
  if (visited.has(file)) return [];
  visited.add(file);
  if (!fs.existsSync(file)) {
    problem(dir, "no kustomization.yaml");
    return [];
  }
  const k = YAML.parse(fs.readFileSync(file, "utf8")) ?? {};
  let docs = [];
  for (const r of k.resources ?? []) {
    const p = path.join(dir, r);
    if (!fs.existsSync(p)) problem(file, `resources: ${r} does not exist`);
    else if (fs.statSync(p).isDirectory()) docs = docs.concat(kustomization(p, visited));
    else docs = docs.concat(readDocs(p));
  }
  for (const p of k.patches ?? [])
    if (p.path && !fs.existsSync(path.join(dir, p.path))) problem(file, `patches: ${p.path} does not exist`);
  for (const p of [...(k.patchesStrategicMerge ?? []), ...(k.configurations ?? [])])
    if (!fs.existsSync(path.join(dir, p))) problem(file, `${p} does not exist`);
  return docs;
}

function kustomizationsUnder(root) {
  const out = [];
  const walk = (d) => {
    if (fs.existsSync(path.join(d, "kustomization.yaml"))) out.push(d);
    for (const e of fs.readdirSync(d, { withFileTypes: true }))
      if (e.isDirectory()) walk(path.join(d, e.name));
  };
  walk(root);
  return out;
}

if (mode === "kustomize") {
  for (const root of args) {
    const dirs = kustomizationsUnder(root);
    if (dirs.length === 0) problem(root, "no kustomization.yaml under it");
    for (const dir of dirs) {
      const docs = kustomization(dir);
      await validateSchema(docs);
      const { objs } = consistency(docs, dir);
      if (path.basename(dir) === "base") completeness(objs, dir);
      console.log(`${dir}: ${docs.length} objects checked`);
    }
  }
} else {
  for (const file of args) {
    const docs = readDocs(file);
    await validateSchema(docs);
    const { objs } = consistency(docs, file);
    completeness(objs, file);
    console.log(`${file}: ${docs.length} objects checked`);
  }
}
process.exit(problems ? 1 : 0);
