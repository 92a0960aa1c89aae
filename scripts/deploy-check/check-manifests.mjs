// Offline checks of fairgate's deployment files, run by scripts/validate-deploy.sh
// with the pinned packages of package.json installed in a tools directory:
//
//   node check-manifests.mjs TOOLS_DIR OUT_DIR KNOWN_METRICS_FILE
//
// - Every object in deploy/istio/*.yaml against its schema: Istio's CRD schemas
//   (@kubernetes-models/istio) and Kubernetes' (kubernetes-models). Those schemas
//   accept unknown fields (a real API server prunes or refuses them), so every key is
//   also looked up among the properties the kind's schema knows: a typo fails.
// - Writes what the shell validates with other tools into OUT_DIR: the WasmPlugin's
//   pluginConfig as the JSON Istio gives the filter (istio-plugin-config.json), the
//   EnvoyFilter's bootstrap stats_tags (istio-stats-tags.json), the sidecar's TOML
//   from its ConfigMap (istio-sidecar.toml), and every PromQL expression of the
//   Grafana dashboards as recording rules (dashboard-rules.yml) for promtool.
// - Every fg_* / fairgate_* metric the dashboards and alerts name is one the filter
//   or the sidecar exports (KNOWN_METRICS_FILE, one name a line).
// - The files docker-compose.yml mounts exist.
// - The Dockerfiles parse, with no error-level problem (dockerfile-utils).
//
// Exits 1 with every problem listed, 0 when all pass.

import { readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [toolsArg, outArg, knownArg] = process.argv.slice(2);
if (!toolsArg || !outArg || !knownArg) {
  console.error("usage: check-manifests.mjs TOOLS_DIR OUT_DIR KNOWN_METRICS_FILE");
  process.exit(2);
}
const tools = resolve(toolsArg, "node_modules");
const out = resolve(outArg);
const root = resolve(dirname(new URL(import.meta.url).pathname), "../..");
const problems = [];
const fail = (where, what) => problems.push(`${where}: ${what}`);
const load = (path) => import(pathToFileURL(join(tools, path)).href);

const YAML = (await load("yaml/dist/index.js")).default;

// ---- Kubernetes and Istio objects -------------------------------------------------

// apiVersion/kind -> [module under node_modules, export, schema file].
const istio = "@kubernetes-models/istio";
const core = "kubernetes-models";
const KINDS = {
  "extensions.istio.io/v1alpha1/WasmPlugin": [istio, "extensions.istio.io/v1alpha1", "ExtensionsIstioIoV1alpha1WasmPlugin"],
  "networking.istio.io/v1/Gateway": [istio, "networking.istio.io/v1", "NetworkingIstioIoV1Gateway"],
  "networking.istio.io/v1/VirtualService": [istio, "networking.istio.io/v1", "NetworkingIstioIoV1VirtualService"],
  "networking.istio.io/v1/DestinationRule": [istio, "networking.istio.io/v1", "NetworkingIstioIoV1DestinationRule"],
  "networking.istio.io/v1/ServiceEntry": [istio, "networking.istio.io/v1", "NetworkingIstioIoV1ServiceEntry"],
  "networking.istio.io/v1alpha3/EnvoyFilter": [istio, "networking.istio.io/v1alpha3", "NetworkingIstioIoV1alpha3EnvoyFilter"],
  "v1/ConfigMap": [core, "v1", "IoK8sApiCoreV1ConfigMap"],
  "v1/Service": [core, "v1", "IoK8sApiCoreV1Service"],
  "apps/v1/Deployment": [core, "apps/v1", "IoK8sApiAppsV1Deployment"],
};

// Keys whose children are names chosen by the user (labels, header names, resource
// names, ConfigMap files...): their own names are not checked, their values are.
const MAP_KEYS = new Set([
  "labels", "annotations", "matchLabels", "nodeSelector", "selector", "headers",
  "withoutHeaders", "queryParams", "data", "requests", "limits", "set", "add",
  "sourceLabels",
]);
// Free-form subtrees: the plugin's own configuration (checked by the filter itself,
// below) and an EnvoyFilter patch's Envoy proto (checked by Envoy).
const OPAQUE_KEYS = new Set(["pluginConfig", "value"]);

// Property names a kind's compiled schema knows: every `data.name` / `data["name"]`
// of its validator and of the validators it imports.
const knownKeysCache = new Map();
function knownKeys(schemaFile) {
  if (knownKeysCache.has(schemaFile)) return knownKeysCache.get(schemaFile);
  const keys = new Set();
  knownKeysCache.set(schemaFile, keys);
  const text = readFileSync(schemaFile, "utf8");
  for (const m of text.matchAll(/data\.([A-Za-z_$][\w$]*)|data\["([^"]+)"\]/g)) keys.add(m[1] ?? m[2]);
  for (const m of text.matchAll(/from"([^"]+)"/g)) {
    let dep = null;
    if (m[1].startsWith("./")) dep = join(dirname(schemaFile), m[1]);
    else if (m[1].includes("/_schemas/")) dep = join(tools, m[1] + ".js");
    if (dep && existsSync(dep)) for (const k of knownKeys(dep)) keys.add(k);
  }
  return keys;
}

function checkKeys(where, value, known, path, keyIsFree = false) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkKeys(where, v, known, `${path}[${i}]`));
    return;
  }
  if (value === null || typeof value !== "object") return;
  for (const [k, v] of Object.entries(value)) {
    if (!keyIsFree && !known.has(k)) fail(where, `${path}.${k}: unknown field`);
    if (OPAQUE_KEYS.has(k)) continue;
    checkKeys(where, v, known, `${path}.${k}`, MAP_KEYS.has(k));
  }
}

const extracted = { pluginConfig: [], statsTags: [], sidecarToml: [] };
const objects = [];

for (const file of readdirSync(join(root, "deploy/istio")).filter((f) => /\.ya?ml$/.test(f)).sort()) {
  const rel = `deploy/istio/${file}`;
  const docs = YAML.parseAllDocuments(readFileSync(join(root, rel), "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) {
      for (const e of doc.errors) fail(rel, `YAML: ${e.message}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    const id = `${rel} ${obj.kind}/${obj.metadata?.name}`;
    const entry = KINDS[`${obj.apiVersion}/${obj.kind}`];
    if (!entry) {
      fail(id, `no schema known for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    const [pkg, group, schema] = entry;
    const models = await load(`${pkg}/${group}/index.js`);
    const Model = models[obj.kind];
    try {
      new Model(obj).validate();
    } catch (e) {
      fail(id, `schema: ${e.message}`);
    }
    checkKeys(id, obj, knownKeys(join(tools, pkg, "_schemas", `${schema}.js`)), obj.kind);
    if (!obj.metadata?.namespace) fail(id, "metadata.namespace: missing (say where it goes)");

    if (obj.kind === "WasmPlugin") extracted.pluginConfig.push([id, obj.spec?.pluginConfig]);
    if (obj.kind === "EnvoyFilter") {
      for (const p of obj.spec?.configPatches ?? []) {
        const tags = p.patch?.value?.stats_config?.stats_tags;
        if (p.applyTo === "BOOTSTRAP" && tags) extracted.statsTags.push(...tags);
      }
    }
    if (obj.kind === "ConfigMap" && obj.data?.["sidecar.toml"]) extracted.sidecarToml.push(obj.data["sidecar.toml"]);
    objects.push(obj);
    console.log(`ok  ${id}`);
  }
}

if (extracted.pluginConfig.length !== 1) {
  fail("deploy/istio", `expected one WasmPlugin with a pluginConfig, found ${extracted.pluginConfig.length}`);
} else {
  // Istio turns the pluginConfig Struct into JSON for the filter's configuration.
  writeFileSync(join(out, "istio-plugin-config.json"), JSON.stringify(extracted.pluginConfig[0][1]));
}
writeFileSync(join(out, "istio-stats-tags.json"), JSON.stringify(extracted.statsTags));
if (extracted.sidecarToml.length !== 1) fail("deploy/istio", "expected one ConfigMap with sidecar.toml");
else writeFileSync(join(out, "istio-sidecar.toml"), extracted.sidecarToml[0]);

// The names the filter uses are Istio's cluster names (outbound|PORT||HOST): each
// shared or pinned cluster must be routed by the VirtualService on exactly that
// x-fairgate-cluster value to that host and port, the sidecar's must be its
// Service, and the sidecar must report headroom under the same names.
const plugin = extracted.pluginConfig[0]?.[1];
if (plugin) {
  const where = "deploy/istio/wasmplugin.yaml pluginConfig";
  const parse = (name) => name.match(/^outbound\|(\d+)\|\|(.+)$/);
  const pools = [
    ...(plugin.routing?.shared_clusters ?? []),
    ...Object.values(plugin.tenants ?? {}).map((t) => t.cluster).filter(Boolean),
  ];
  const header = plugin.routing?.header ?? "x-fairgate-cluster";
  const routes = objects
    .filter((o) => o.kind === "VirtualService")
    .flatMap((vs) => vs.spec?.http ?? []);
  for (const name of pools) {
    const m = parse(name);
    if (!m) {
      fail(where, `cluster ${name} is not an Istio cluster name (outbound|PORT||HOST)`);
      continue;
    }
    const route = routes.find((r) => (r.match ?? []).some((mm) => mm.headers?.[header]?.exact === name));
    const dest = route?.route?.[0]?.destination;
    if (!route) fail(where, `no VirtualService route matches ${header}: ${name}`);
    else if (dest?.host !== m[2] || String(dest?.port?.number) !== m[1])
      fail(where, `the route for ${name} goes to ${dest?.host}:${dest?.port?.number}`);
  }
  const sidecar = parse(plugin.sidecar?.cluster ?? "");
  const services = objects
    .filter((o) => o.kind === "Service")
    .flatMap((o) => (o.spec?.ports ?? []).map((p) => `${p.port}/${o.metadata.name}.${o.metadata.namespace}.svc.cluster.local`));
  if (!sidecar) fail(where, `sidecar.cluster ${plugin.sidecar?.cluster} is not an Istio cluster name`);
  else if (!services.includes(`${sidecar[1]}/${sidecar[2]}`)) fail(where, `sidecar.cluster names no Service here (${services.join(", ")})`);
  const toml = extracted.sidecarToml[0] ?? "";
  const reported = [...toml.matchAll(/^\[clusters\."([^"]+)"\]/gm)].map((m) => m[1]).sort();
  const wanted = [...new Set(pools)].sort();
  if (JSON.stringify(reported) !== JSON.stringify(wanted))
    fail("deploy/istio/sidecar.yaml", `the sidecar's clusters ${reported.join(", ")} are not the filter's ${wanted.join(", ")}`);
  console.log(`ok  Istio cluster names agree: ${wanted.length} pools and the sidecar`);
}

// ---- Grafana dashboards -----------------------------------------------------------

// Grafana's variables, replaced by what they stand for at query time.
const GRAFANA_VARS = [
  [/\$__rate_interval|\$\{__rate_interval\}/g, "1m"],
  [/\$__interval|\$\{__interval\}/g, "15s"],
  [/\$__range|\$\{__range\}/g, "1h"],
  [/\$\{tenant(?::\w+)?\}|\$tenant\b/g, ".*"],
];

const exprs = []; // [where, expr]
const provisioned = YAML.parse(readFileSync(join(root, "deploy/grafana/provisioning/datasources/prometheus.yml"), "utf8"));
const datasourceUids = new Set((provisioned.datasources ?? []).map((d) => d.uid));
const dashDir = join(root, "deploy/grafana/dashboards");
for (const file of readdirSync(dashDir).filter((f) => f.endsWith(".json")).sort()) {
  const rel = `deploy/grafana/dashboards/${file}`;
  let dash;
  try {
    dash = JSON.parse(readFileSync(join(dashDir, file), "utf8"));
  } catch (e) {
    fail(rel, `JSON: ${e.message}`);
    continue;
  }
  if (!dash.uid || !dash.title) fail(rel, "a dashboard needs a uid and a title");
  const ids = new Set();
  const visit = (panels) => {
    for (const p of panels ?? []) {
      if (ids.has(p.id)) fail(rel, `panel id ${p.id} used twice`);
      ids.add(p.id);
      for (const t of p.targets ?? []) {
        if (typeof t.expr !== "string" || !t.expr.trim()) {
          fail(rel, `panel "${p.title}" target ${t.refId}: no expr`);
          continue;
        }
        let expr = t.expr;
        for (const [re, v] of GRAFANA_VARS) expr = expr.replace(re, v);
        if (expr.includes("$")) fail(rel, `panel "${p.title}" target ${t.refId}: unknown variable in ${t.expr}`);
        exprs.push([`${rel} panel ${p.id} "${p.title}" ${t.refId}`, expr]);
      }
      visit(p.panels);
    }
  };
  visit(dash.panels);
  for (const v of dash.templating?.list ?? []) {
    if (v.type === "datasource" && !datasourceUids.has(v.current?.value))
      fail(rel, `data source variable ${v.name} defaults to ${v.current?.value}, not a provisioned data source`);
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    const m = v.type === "query" && q?.match(/^label_values\((.+),\s*\w+\)$/);
    if (m) exprs.push([`${rel} variable ${v.name}`, m[1]]);
  }
}
const rules = exprs.map(([where, expr], i) => ({ record: `dashboard:expr_${i}`, expr, labels: { source: where } }));
writeFileSync(join(out, "dashboard-rules.yml"), YAML.stringify({ groups: [{ name: "dashboards", rules }] }));
console.log(`ok  ${exprs.length} dashboard expressions written for promtool`);

// ---- Metric names -----------------------------------------------------------------

const known = new Set(readFileSync(knownArg, "utf8").split(/\s+/).filter(Boolean));
const alerts = YAML.parse(readFileSync(join(root, "deploy/prometheus/alerts.yml"), "utf8"));
for (const g of alerts.groups ?? []) for (const r of g.rules ?? []) exprs.push([`deploy/prometheus/alerts.yml ${r.alert ?? r.record}`, r.expr]);
let named = 0;
for (const [where, expr] of exprs) {
  // Not the fg_ inside a recording rule's name (tenant:fg_queued:max5m).
  for (const m of String(expr).matchAll(/(?<![\w:])(?:fg|fairgate)_[a-z0-9_]+(?![\w:])/g)) {
    const name = m[0].replace(/_(bucket|sum|count)$/, "");
    named++;
    if (!known.has(name) && !known.has(m[0])) fail(where, `metric ${m[0]} is exported by neither the filter nor the sidecar`);
  }
}
console.log(`ok  ${named} metric names checked against ${known.size} exported ones`);

// ---- docker-compose.yml ----------------------------------------------------------

// `docker-compose config` does not look at the host side of bind mounts: a
// mistyped path would only show at `up`. target/ is made at run time; demo/ comes
// with the native demo.
const compose = YAML.parse(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true });
for (const [name, svc] of Object.entries(compose.services ?? {})) {
  for (const v of svc.volumes ?? []) {
    const src = typeof v === "string" ? v.split(":")[0] : v.source;
    if (!src?.startsWith(".") || src.startsWith("./target/")) continue;
    if (existsSync(join(root, src))) continue;
    if (/^\.\/demo(\/|$)/.test(src)) console.log(`warn docker-compose.yml ${name} mounts ${src}, not there yet`);
    else fail("docker-compose.yml", `service ${name} mounts ${src}, which does not exist`);
  }
}
console.log("ok  docker-compose.yml mounts");

// ---- Dockerfiles ------------------------------------------------------------------

const { validate: lintDockerfile } = await load("dockerfile-utils/lib/main.js");
for (const rel of ["Dockerfile", "deploy/wasm-image/Dockerfile"]) {
  const diagnostics = lintDockerfile(readFileSync(join(root, rel), "utf8"));
  // Severity 1 is an error; warnings (2) are printed, not fatal.
  for (const d of diagnostics) {
    const line = `line ${d.range.start.line + 1}: ${d.message}`;
    if (d.severity === 1) fail(rel, line);
    else console.log(`warn ${rel} ${line}`);
  }
  console.log(`ok  ${rel}`);
}

if (problems.length) {
  console.error(`\n${problems.length} problem(s):`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
