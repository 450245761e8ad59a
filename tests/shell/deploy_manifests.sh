#!/usr/bin/env bash
# Validates deploy/ (docs/DEPLOY.md "What CI validates"), offline, with the
# tools ops/install-deps installs (deploy/tools/install-validators); a missing
# tool is a failure, never a skip:
#   1. the generated manifests are current (deploy/tools/gen-manifests --check)
#   2. kubeconform -strict: every resource against the Kubernetes schemas and
#      the CRD schemas of Strimzi, CloudNativePG and KEDA (a missing schema is
#      an error), the files and `kustomize build`'s output; and it does
#      reject a broken Deployment and KafkaTopic
#   3. kustomization.yaml lists every manifest, and only files that exist;
#      cross-checks kubeconform cannot make: probes on a declared port; each
#      program's port setting = its container port; each ScaledObject scales
#      one of our Deployments; commands are our binaries; PDBs, resources
#   4. promtool check rules + promtool test rules on the alert rules
#   5. the rules and the Grafana dashboard name only metrics the code exports
# Also `make deploy-check`.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

eval "$(deploy/tools/install-validators --env)"
kubeconform=$VOX_DEPLOY_BIN/kubeconform
promtool=$VOX_DEPLOY_BIN/promtool
kustomize=$VOX_DEPLOY_BIN/kustomize
[ -x "$kustomize" ] || fail "kustomize missing ($kustomize): run ops/install-deps"
[ -x "$kubeconform" ] || fail "kubeconform missing ($kubeconform): run ops/install-deps"
[ -x "$promtool" ] || fail "promtool missing ($promtool): run ops/install-deps"
deploy/tools/install-validators --check >/dev/null ||
	fail "the validators or their schemas are missing or of other versions: run ops/install-deps"
python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml missing: run ops/install-deps"

k8s_dir=deploy/kubernetes
echo "== 1. generated manifests current"
deploy/tools/gen-manifests --check || fail "run deploy/tools/gen-manifests and commit the result"

bad=$(mktemp -d)
trap 'rm -rf "$bad"' EXIT
schema_args=(
	-kubernetes-version "$VOX_DEPLOY_K8S_VERSION"
	-schema-location "$VOX_DEPLOY_SCHEMAS/k8s/{{.NormalizedKubernetesVersion}}-local{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json"
	-schema-location "$VOX_DEPLOY_SCHEMAS/crd/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
)
echo "== 2. kubeconform -strict (Kubernetes $VOX_DEPLOY_K8S_VERSION, Strimzi, CloudNativePG, KEDA)"
summary=$("$kubeconform" -strict -summary -ignore-filename-pattern 'kustomization\.yaml$' \
	"${schema_args[@]}" "$k8s_dir") || {
	echo "$summary"
	fail "kubeconform found invalid manifests"
}
echo "$summary"
grep -qE 'Invalid: 0, Errors: 0, Skipped: 0' <<<"$summary" || fail "kubeconform: not every resource validated"
# What `kubectl apply -k` would send: kustomize's output validates too, and
# every container of ours runs the image kustomization.yaml names.
"$kustomize" build "$k8s_dir" >"$bad/built.yaml" || fail "kustomize build $k8s_dir"
summary=$("$kubeconform" -strict -summary "${schema_args[@]}" "$bad/built.yaml") || {
	echo "$summary"
	fail "kubeconform: the output of kustomize build is invalid"
}
echo "kustomize build: $summary"
if grep -qE '^ *image: voxlink$' "$bad/built.yaml"; then
	fail "kustomize build left an image unnamed (images: in kustomization.yaml)"
fi
# The schemas really bite: an unknown field and a wrong type must be refused.
cat >"$bad/bad.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
  selector:
    matchLabels: {app: bad}
  template:
    metadata:
      labels: {app: bad}
    spec:
      containers:
        - name: bad
          image: bad
          livenessProbe:
            httpGet: {path: /healthz, port: 1}
            periodSecond: 10
---
apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata:
  name: bad
  labels: {strimzi.io/cluster: voxlink}
spec:
  partitions: six
EOF
if out=$("$kubeconform" -strict -summary "${schema_args[@]}" "$bad/bad.yaml" 2>&1); then
	echo "$out"
	fail "kubeconform accepted a broken Deployment and KafkaTopic: the schemas are not in use"
fi
grep -q 'Invalid: 2' <<<"$out" || {
	echo "$out"
	fail "kubeconform did not refuse both broken resources"
}
echo "ok: a broken Deployment and KafkaTopic are refused"

echo "== 3. kustomization lists every manifest; cross-checks"
python3 - "$k8s_dir" <<'EOF' || fail "kustomization or cross-checks"
import glob, os, re, sys, yaml
d = sys.argv[1]
problems = []
files = sorted(os.path.relpath(p, d) for p in glob.glob(os.path.join(d, "**", "*.yaml"), recursive=True)
               if os.path.basename(p) != "kustomization.yaml")
with open(os.path.join(d, "kustomization.yaml")) as f:
    listed = yaml.safe_load(f)["resources"]
problems += ["kustomization.yaml lists %s: no such file" % r for r in listed if r not in files]
problems += ["kustomization.yaml does not list %s" % f for f in files if f not in listed]
docs = []
for p in files:
    with open(os.path.join(d, p)) as f:
        docs += [(p, x) for x in yaml.safe_load_all(f) if x]
kinds = {doc["kind"] for _, doc in docs}
for k in ("Deployment", "PodDisruptionBudget", "ConfigMap", "Secret", "Job", "CronJob", "Kafka",
          "KafkaNodePool", "KafkaTopic", "Cluster", "ScheduledBackup", "ScaledObject"):
    if k not in kinds:
        problems.append("no %s among the manifests" % k)
with open("Makefile") as f:
    mk = f.read()
m = re.search(r"^PROGRAMS := ((?:.*\\\n)*.*)$", mk, re.M)
programs = {os.path.basename(w) for w in m.group(1).replace("\\\n", " ").split()}
deployments = {}
for path, doc in docs:
    kind = doc["kind"]
    spec = doc.get("spec", {})
    if kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    if kind not in ("Deployment", "StatefulSet", "Job", "CronJob"):
        continue
    name = doc["metadata"]["name"]
    for c in spec["template"]["spec"]["containers"]:
        where = "%s %s/%s" % (path, name, c["name"])
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if port is not None and port not in ports and port not in ports.values():
                problems.append("%s: %s on port %s, not a container port" % (where, probe, port))
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        for var in ("VOX_WORKER_METRICS_PORT", "VOX_EXPORT_METRICS_PORT", "VOX_INGRESS_PORT"):
            if var in env and int(env[var]) not in ports.values():
                problems.append("%s: %s=%s is no container port %s" % (where, var, env[var], ports))
        if c.get("image") == "voxlink":
            binary = os.path.basename(c.get("command", ["?"])[0])
            if binary not in programs:
                problems.append("%s: runs %s, not one of the Makefile's PROGRAMS" % (where, binary))
            if kind == "Deployment":
                for probe in ("livenessProbe", "readinessProbe"):
                    if "httpGet" not in c.get(probe, {}):
                        problems.append("%s: no HTTP %s" % (where, probe))
                if "limits" not in c.get("resources", {}) or "requests" not in c.get("resources", {}):
                    problems.append("%s: resource requests and limits" % where)
                deployments[name] = binary
pdbs = {doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for _, doc in docs if doc["kind"] == "PodDisruptionBudget"}
for name in deployments:
    if name not in pdbs:
        problems.append("Deployment %s has no PodDisruptionBudget" % name)
scaled = set()
for path, doc in docs:
    if doc["kind"] != "ScaledObject":
        continue
    target = doc["spec"]["scaleTargetRef"]["name"]
    scaled.add(target)
    if target not in deployments:
        problems.append("%s: ScaledObject %s scales no Deployment of ours" % (path, target))
for name, binary in deployments.items():
    if name not in scaled and binary != "ingress":
        problems.append("Deployment %s (a worker) has no ScaledObject" % name)
for p in problems:
    print(p)
print("%d Deployments of ours, %d ScaledObjects, %d PDBs" % (len(deployments), len(scaled), len(pdbs)))
sys.exit(1 if problems else 0)
EOF

echo "== 4. promtool ($("$promtool" --version 2>&1 | head -n 1))"
"$promtool" check rules deploy/prometheus/voxlink-rules.yml || fail "promtool check rules"
(cd deploy/prometheus && "$promtool" test rules voxlink-rules.test.yml) || fail "promtool test rules"

echo "== 5. rules and dashboard name only exported metrics"
deploy/tools/check-metrics || fail "check-metrics"
echo "deploy manifests: ok"
