#!/usr/bin/env bash
# The production deployment files in deploy/ (systemd units, Containerfile, Kubernetes
# manifests, Prometheus rules and the Grafana dashboard), checked with the real tools and
# against the code, without a container engine, a cluster or a running systemd:
#   - systemd: `systemd-analyze verify` of the units with ExecStart pointed at the built
#     binaries (any message fails), `systemd-analyze security` exposure, the hardening and
#     stop settings (TimeoutStopSec longer than the worker's default drain timeout, read from
#     lib/engine/config_settings.c), the service user made by systemd-sysusers from the sysusers file;
#   - container: the runtime stage installs the Debian package of every library the built
#     pkcs-worker, pkcs-coordinator and pkcsctl link (objdump -p NEEDED, dpkg -S), the build
#     stage the package of every pkg-config module CMake asks for, the sources it copies
#     configure with CMake, and the entry point starts the right program and health check
#     (against stand-ins and a stub /readyz on 127.0.0.1);
#   - Kubernetes: every manifest against the schemas of kubernetes-validate (strict, two
#     versions; installed from PyPI into a cached virtualenv), and against each other and the
#     code: probes, ports, labels, volumes, Secrets, grace period against the drain, HPA bounds,
#     the configuration loaded by the real parser (pkcsctl lint-profile);
#   - monitoring: promtool check rules / test rules (each alert must fire in a test) / check
#     config, the dashboard's queries through promtool, and every metric and label that the
#     rules and the dashboard use must be one the C sources register (pc_metrics_* calls);
#   - every PC_* variable the deployment files and docs/operations.md name is read by the code.
# Needs: systemd, prometheus (promtool), python3-venv, binutils, curl, cmake, and PyPI access
# the first time (deploy/setup.sh installs the Debian packages).
set -euo pipefail

src="${PC_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
bin="${PC_BIN_DIR:-$src/build}"
deploy="$src/deploy"
kv_version=1.37.0 # kubernetes-validate: its schemas go up to Kubernetes 1.37
k8s_versions=(1.27.0 1.37.0)

pass=0
ok() {
  pass=$((pass + 1))
  echo "ok - $*"
}
fail() {
  echo "FAIL: $*" >&2
  echo "$pass passed, 1 failed" >&2
  exit 1
}

tmp="$(mktemp -d "${TMPDIR:-/tmp}/pc-deploy.XXXXXX")"
stub_pid=""
cleanup() {
  if [[ -n $stub_pid ]]; then
    kill "$stub_pid" 2>/dev/null || true
    wait "$stub_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
# A command failing outside the checks below is a failure too, never a silent exit.
set -E
trap 'echo "FAIL: line $LINENO: \"$BASH_COMMAND\" exited $?" >&2; echo "$pass passed, 1 failed" >&2' ERR

in_list() { # in_list WORD LIST...: WORD is one of LIST
  local w="$1" x
  shift
  for x in "$@"; do [[ $x == "$w" ]] && return 0; done
  return 1
}

# ---- tools ----------------------------------------------------------------------------------
need() { # need COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 ||
    fail "$1 is missing: install Debian's $2 (bash deploy/setup.sh --deps-only installs it)"
}
need systemd-analyze systemd
need systemd-sysusers systemd
need promtool prometheus
need objdump binutils
need dpkg-query dpkg
need curl curl
need cmake cmake
need pkg-config pkg-config
need python3 python3
python3 -c 'import ensurepip, venv' 2>/dev/null ||
  fail "python3 cannot make virtualenvs: install Debian's python3-venv (bash deploy/setup.sh --deps-only installs it)"
for b in pkcs-worker pkcs-coordinator pkcsctl; do
  [[ -x $bin/$b ]] || fail "$bin/$b is missing: build first (cmake --build), or set PC_BIN_DIR"
done
ok "tools present: systemd-analyze, systemd-sysusers, promtool, objdump, dpkg, curl, cmake, python3 venv"

# ---- kubernetes-validate in a cached virtualenv (PyPI the first time only) ------------------
venv="${PC_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pkcs-connector/deploy-venv-kv$kv_version}"
mkdir -p "$(dirname "$venv")"
(
  flock 9
  if [[ ! -f $venv/.complete ]]; then
    rm -rf "$venv"
    echo "installing kubernetes-validate $kv_version from PyPI into $venv (once)" >&2
    python3 -m venv "$venv" >"$tmp/venv.log" 2>&1 || {
      cat "$tmp/venv.log" >&2
      exit 3
    }
    if ! timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "kubernetes-validate==$kv_version" >"$tmp/pip.log" 2>&1; then
      tail -n 15 "$tmp/pip.log" >&2
      exit 4
    fi
    touch "$venv/.complete"
  fi
) 9>"$venv.lock" || {
  rc=$?
  [[ $rc == 3 ]] && fail "python3 -m venv $venv failed (see above): install Debian's python3-venv"
  fail "could not install kubernetes-validate==$kv_version from PyPI into $venv (pip's last lines above). This test needs PyPI once to fetch the Kubernetes schemas, then runs from the cache; check the network or pip's index settings"
}
py="$venv/bin/python"
kval="$venv/bin/kubernetes-validate"
"$py" -c 'import yaml, kubernetes_validate' 2>/dev/null || fail "the virtualenv $venv is broken: remove it and run again"
ok "kubernetes-validate $kv_version ready in $venv"

# ---- what the code exports: metrics, labels, settings ----------------------------------------
# Metric names from the pc_metrics_counter/gauge/histogram calls in worker/, coordinator/ and
# lib/ (a literal name, or a `const char *x = "name";` variable of the same file); a call whose
# name cannot be resolved fails the test rather than being skipped.
"$py" - "$src" "$tmp/metrics.json" 2>"$tmp/py.err" <<'PY' || fail "could not read the metric names out of the C sources: $(cat "$tmp/py.err")"
import glob, json, os, re, sys
src, out = sys.argv[1], sys.argv[2]
files = []
for d in ("worker", "coordinator", "lib"):
    files += glob.glob(os.path.join(src, d, "**", "*.c"), recursive=True)
metrics, labels, values, unresolved = {}, set(), set(), []
for f in sorted(files):
    text = open(f, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    consts = dict(re.findall(r'const\s+char\s*\*\s*(?:const\s+)?(\w+)\s*=\s*"([^"]*)"\s*;', text))
    calls = list(re.finditer(r'\bpc_metrics_(counter|gauge|histogram)\s*\(\s*([^,()]+),\s*("(?:[^"\\]|\\.)*"|[A-Za-z_]\w*)\s*,', text))
    for m in calls:
        kind, arg = m.group(1), m.group(3)
        if re.match(r"^(const\s|pc_metrics_t)", m.group(2).strip()):
            continue  # the declaration or definition, not a registration
        name = arg[1:-1] if arg.startswith('"') else consts.get(arg)
        line = text.count("\n", 0, m.start()) + 1
        if name is None:
            unresolved.append(f"{os.path.relpath(f, src)}:{line}: {arg}")
            continue
        if metrics.get(name, kind) != kind:
            print(f"{name} registered as {metrics[name]} and {kind}", file=sys.stderr)
            sys.exit(1)
        metrics[name] = kind
    if calls:
        # label names and constant values of the files that register metrics
        for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', text):
            for k, v in re.findall(r'(\w+)=\\"([^"\\%]*)\\"', lit):
                labels.add(k)
                values.add(v)
            for k in re.findall(r'(\w+)=\\"%s\\"', lit):
                labels.add(k)
if unresolved:
    print("metric names that are neither literals nor const char * variables of their file "
          "(teach this test to read them):\n  " + "\n  ".join(unresolved), file=sys.stderr)
    sys.exit(1)
# Label values: any string literal of the C sources, and the enum value names of the schema.
for f in files:
    text = open(f, encoding="utf-8").read()
    values.update(re.findall(r'"([A-Za-z0-9_.-]+)"', text))
for f in glob.glob(os.path.join(src, "proto", "*.proto")):
    values.update(re.findall(r"^\s*([A-Z][A-Z0-9_]*)\s*=\s*\d+\s*;", open(f).read(), flags=re.M))
json.dump({"metrics": metrics, "labels": sorted(labels), "values": sorted(values)}, open(out, "w"))
PY
read -r n_metrics n_hist < <("$py" -c 'import json,sys; m=json.load(open(sys.argv[1]))["metrics"]; print(len(m), sum(1 for k in m.values() if k=="histogram"))' "$tmp/metrics.json")
for m in pkcs_requests_total pkcs_consumer_lag pkcs_request_seconds pkcs_cluster_lag pkcs_cluster_up; do
  "$py" -c 'import json,sys; sys.exit(sys.argv[2] not in json.load(open(sys.argv[1]))["metrics"])' "$tmp/metrics.json" "$m" ||
    fail "the sources register no metric $m: renamed? Update deploy/monitoring, deploy/k8s/worker-hpa.yaml and docs/operations.md"
done
ok "the C sources register $n_metrics metrics ($n_hist histograms)"

# PC_* environment variables the code reads: every "PC_NAME" string literal of the sources.
grep -rhoE '"PC_[A-Z0-9_]+"' "$src/lib" "$src/worker" "$src/coordinator" "$src/pkcsctl" --include='*.[ch]' |
  tr -d '"' | sort -u >"$tmp/env-known.txt"
[[ -s $tmp/env-known.txt ]] || fail "found no PC_* variable in the sources"
# The worker's default drain timeout, from the settings table of lib/engine/config_settings.c.
drain_ms="$(sed -nE 's/.*"drain_timeout_ms",[[:space:]]*"PC_DRAIN_TIMEOUT_MS".*"([0-9]+)".*/\1/p' "$src/lib/engine/config_settings.c")"
[[ $drain_ms =~ ^[0-9]+$ ]] || fail "cannot read worker.drain_timeout_ms's default from lib/engine/config_settings.c"
max_instances="$(sed -nE 's/.*"max_instances",[[:space:]]*"PC_MAX_INSTANCES".*"([0-9]+)".*/\1/p' "$src/lib/engine/config_settings.c")"
[[ $max_instances =~ ^[0-9]+$ ]] || fail "cannot read worker.max_instances's default from lib/engine/config_settings.c"

env_used=$(grep -rhoE '\bPC_[A-Z0-9_]+\b' "$deploy/systemd" "$deploy/container" "$deploy/k8s" \
  "$deploy/monitoring" "$src/docs/operations.md" | sort -u)
unknown=()
for v in $env_used; do grep -qx "$v" "$tmp/env-known.txt" || unknown+=("$v"); done
((${#unknown[@]} == 0)) ||
  fail "variables the deployment files or docs/operations.md use but the code never reads: ${unknown[*]}"
ok "every PC_* variable in deploy/ and docs/operations.md ($(wc -w <<<"$env_used") of them) is read by the code"

# Settings named section.key in docs/operations.md must exist in the configuration code.
bad_settings=()
for s in $(grep -oE '`(worker|kafka|redis|coordinator)\.[a-z_]+`' "$src/docs/operations.md" | tr -d '`' | sort -u); do
  case "${s#*.}" in yaml | yml | json | env | service | conf) continue ;; esac # file names
  grep -qE "\{\"${s%%.*}\", \"${s#*.}\"" "$src/lib/engine/config_settings.c" || bad_settings+=("$s")
done
((${#bad_settings[@]} == 0)) || fail "docs/operations.md names settings lib/engine/config_settings.c does not have: ${bad_settings[*]}"
ok "every setting docs/operations.md names is in lib/engine/config_settings.c"

# lint_config FILE WHAT: loads a configuration with the real parser (pkcsctl lint-profile) after
# pointing its absolute paths into a scratch root where they exist (the CA passphrase file is
# read at load time), and checks the sample profiles against its CAs and templates.
lint_config() {
  local cfg="$1" what="$2" root="$tmp/root-$RANDOM" p
  "$py" - "$cfg" "$root" "$root.json" 2>"$tmp/py.err" <<'PY' || fail "$what: cannot rewrite its paths: $(cat "$tmp/py.err")"
import json, os, sys
cfg, root, out = sys.argv[1:4]
def walk(v):
    if isinstance(v, dict):
        return {k: walk(x) for k, x in v.items()}
    if isinstance(v, list):
        return [walk(x) for x in v]
    if isinstance(v, str) and v.startswith("/"):
        p = root + v
        if os.path.basename(v) and "." in os.path.basename(v) or "passphrase" in v or "secret" in v:
            os.makedirs(os.path.dirname(p), exist_ok=True)
            open(p, "w").write("placeholder-for-the-test\n")
            os.chmod(p, 0o600)  # secret files are refused when others may read them
        else:
            os.makedirs(p, exist_ok=True)
        return p
    return v
json.dump(walk(json.load(open(cfg))), open(out, "w"))
PY
  for p in "$deploy"/samples/profiles/*.json; do
    "$bin/pkcsctl" lint-profile --config "$root.json" --profile "$p" >"$tmp/lint.out" 2>&1 ||
      fail "$what: pkcsctl lint-profile --profile ${p#"$src"/} with it failed: $(cat "$tmp/lint.out")"
  done
}

# ---- systemd ----------------------------------------------------------------------------------
sd="$deploy/systemd"
units=(pkcs-worker@.service pkcs-coordinator.service)
mkdir -p "$tmp/units"
for u in "${units[@]}"; do
  [[ -f $sd/$u ]] || fail "deploy/systemd/$u is missing"
  grep -q '^ExecStart=/usr/local/bin/pkcs-' "$sd/$u" || fail "$u: ExecStart does not run /usr/local/bin/pkcs-*"
  sed "s#/usr/local/bin/#$bin/#g" "$sd/$u" >"$tmp/units/$u"
done
# The template is verified as an instance (the instance is the worker's port).
(cd "$tmp/units" && systemd-analyze verify --man=no ./pkcs-worker@9464.service ./pkcs-coordinator.service) \
  >"$tmp/verify.out" 2>&1 || fail "systemd-analyze verify failed: $(cat "$tmp/verify.out")"
# verify exits 0 on unknown keys and unparsable values (it only logs them): any message fails.
[[ ! -s $tmp/verify.out ]] || fail "systemd-analyze verify complained: $(cat "$tmp/verify.out")"
ok "systemd-analyze verify accepts pkcs-worker@9464.service and pkcs-coordinator.service (ExecStart on $bin)"

for u in pkcs-worker@9464.service pkcs-coordinator.service; do
  (cd "$tmp/units" && systemd-analyze security --offline=yes --threshold=20 "./$u") >"$tmp/sec.out" 2>&1 ||
    fail "$u: systemd-analyze security exposure is over 2.0: $(grep -E '✗|Overall' "$tmp/sec.out")"
done
ok "systemd-analyze security: exposure at most 2.0 for both units"

# unit_value FILE KEY: the last value of KEY= in the file (the one systemd uses).
unit_value() { sed -nE "s/^$2=(.*)$/\1/p" "$1" | tail -n 1; }
seconds_of() { # 45s, 45, 1min, 1min 30s, 500ms -> milliseconds
  "$py" -c '
import re, sys
t, ms = sys.argv[1].replace(" ", ""), 0
units = {"ms": 1, "s": 1000, "sec": 1000, "m": 60000, "min": 60000, "h": 3600000}
for n, u in re.findall(r"(\d+)([a-z]*)", t):
    ms += int(n) * units[u or "s"]
print(ms)' "$1"
}
for u in "${units[@]}"; do
  f="$sd/$u"
  for kv in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes ProtectHome=yes \
    CapabilityBoundingSet= Restart=on-failure KillSignal=SIGTERM RestartPreventExitStatus=2; do
    [[ $(unit_value "$f" "${kv%%=*}") == "${kv#*=}" ]] || fail "$u: wants $kv, has '${kv%%=*}=$(unit_value "$f" "${kv%%=*}")'"
  done
  user="$(unit_value "$f" User)"
  [[ -n $user && $user != root && $user != 0 ]] || fail "$u: runs as '${user:-root}', not a dedicated user"
  [[ $(unit_value "$f" StateDirectory) == pkcs-connector ]] || fail "$u: StateDirectory is not pkcs-connector"
  grep -q -- "--config /etc/pkcs-connector/config.json" <<<"$(unit_value "$f" ExecStart)" ||
    fail "$u: ExecStart does not read /etc/pkcs-connector/config.json"
done
stop_ms="$(seconds_of "$(unit_value "$sd/pkcs-worker@.service" TimeoutStopSec)")"
((stop_ms > drain_ms)) ||
  fail "pkcs-worker@.service: TimeoutStopSec ($stop_ms ms) is not longer than worker.drain_timeout_ms ($drain_ms ms)"
grep -q '^Environment=PC_HTTP_PORT=%i$' "$sd/pkcs-worker@.service" ||
  fail "pkcs-worker@.service: the instance name is not the worker's http port (Environment=PC_HTTP_PORT=%i)"
ok "units: dedicated user $user, hardening settings, restart policy, worker stop timeout $stop_ms ms > drain $drain_ms ms"

mkdir -p "$tmp/sysroot/etc"
systemd-sysusers --root="$tmp/sysroot" "$sd/pkcs-connector.sysusers" >"$tmp/sysusers.out" 2>&1 ||
  fail "systemd-sysusers rejected deploy/systemd/pkcs-connector.sysusers: $(cat "$tmp/sysusers.out")"
for u in "${units[@]}"; do
  u_user="$(unit_value "$sd/$u" User)"
  u_group="$(unit_value "$sd/$u" Group)"
  grep -q "^$u_user:" "$tmp/sysroot/etc/passwd" || fail "the sysusers file does not make $u's user $u_user"
  grep -q "^${u_group:-$u_user}:" "$tmp/sysroot/etc/group" || fail "the sysusers file does not make $u's group ${u_group:-$u_user}"
done
ok "systemd-sysusers makes user and group $user from deploy/systemd/pkcs-connector.sysusers"

lint_config "$sd/config.example.json" "deploy/systemd/config.example.json"
ok "deploy/systemd/config.example.json loads with the real parser; the sample profiles lint against it"

# ---- container --------------------------------------------------------------------------------
cf="$deploy/container/Containerfile"
[[ -f $cf ]] || fail "deploy/container/Containerfile is missing"
"$py" - "$cf" "$tmp/cf.json" 2>"$tmp/py.err" <<'PY' || fail "Containerfile: $(cat "$tmp/py.err")"
import json, re, shlex, sys
text = open(sys.argv[1]).read()
# join continuation lines, drop comments
lines, cur = [], ""
for raw in text.splitlines():
    s = raw.strip()
    if not cur and (not s or s.startswith("#")):
        continue
    if s.startswith("#"):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    lines.append(cur + s)
    cur = ""
stages, errors = [], []
for ln in lines:
    ins, _, rest = ln.partition(" ")
    ins = ins.upper()
    if ins == "FROM":
        m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest.strip(), re.I)
        stages.append({"image": m.group(1), "name": m.group(2), "apt": [], "copy": [], "run": [],
                       "user": None, "healthcheck": None, "entrypoint": None, "cmd": None,
                       "expose": [], "env": {}, "workdir": None})
        continue
    if not stages:
        errors.append(f"instruction before FROM: {ln}")
        continue
    st = stages[-1]
    if ins == "RUN":
        st["run"].append(rest)
        for m in re.finditer(r"apt-get\s+install\s+(.*?)(?:&&|$)", rest):
            st["apt"] += [w for w in m.group(1).split() if not w.startswith("-")]
    elif ins == "COPY":
        st["copy"].append(shlex.split(rest))
    elif ins == "WORKDIR":
        st["workdir"] = rest.strip()
    elif ins == "USER":
        st["user"] = rest.strip()
    elif ins == "HEALTHCHECK":
        st["healthcheck"] = rest
    elif ins == "ENTRYPOINT":
        st["entrypoint"] = json.loads(rest)
    elif ins == "CMD":
        st["cmd"] = json.loads(rest)
    elif ins == "EXPOSE":
        st["expose"] += [int(p.split("/")[0]) for p in rest.split()]
    elif ins == "ENV":
        for k, v in re.findall(r"(\w+)=(\S+)", rest):
            st["env"][k] = v
if len(stages) < 2:
    errors.append("not multi-stage: wants a build stage and a runtime stage")
for st in stages:
    if not re.match(r"^(\S+/)?debian:(12|bookworm)(-slim)?(@.*)?$", st["image"]):
        errors.append(f"stage FROM {st['image']} is not Debian 12")
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
json.dump(stages, open(sys.argv[2], "w"))
PY
cfq() { "$py" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$tmp/cf.json" "$1"; }
build_stage_name="$(cfq 's[0]["name"] or ""')"
[[ -n $build_stage_name ]] || fail "Containerfile: the build stage has no name (FROM ... AS build)"
read -ra runtime_pkgs <<<"$(cfq '" ".join(s[-1]["apt"])')"
read -ra build_pkgs <<<"$(cfq '" ".join(s[0]["apt"])')"
((${#runtime_pkgs[@]} > 0)) || fail "Containerfile: the runtime stage installs no package"
for p in "${runtime_pkgs[@]}"; do
  [[ $p != *-dev ]] || fail "Containerfile: the runtime stage installs the development package $p"
  dpkg-query -W "$p" >/dev/null 2>&1 || apt-cache show "$p" >/dev/null 2>&1 ||
    fail "Containerfile: the runtime stage installs '$p', which is not a Debian package known here"
done

# Every library the programs need (NEEDED), mapped to its Debian package, is installed by the
# runtime stage (libc6 comes with the base image). Sanitizer runtimes of a test build are not
# part of the image's build.
declare -A needed_by=()
for b in pkcs-worker pkcs-coordinator pkcsctl; do
  while read -r so; do
    needed_by[$so]+="${needed_by[$so]:+,}$b"
  done < <(objdump -p "$bin/$b" | awk '$1 == "NEEDED" { print $2 }')
done
((${#needed_by[@]} > 0)) || fail "objdump -p found no NEEDED library in the programs"
mapped=()
skipped=()
multiarch="$(gcc -print-multiarch 2>/dev/null || true)"
[[ -n $multiarch ]] || multiarch="$(uname -m)-linux-gnu"
for so in "${!needed_by[@]}"; do
  if [[ $so =~ ^lib(asan|ubsan|tsan|lsan)\.so ]]; then
    skipped+=("$so")
    continue
  fi
  pkg="$(dpkg -S "*/$multiarch/$so" 2>/dev/null | awk -F: 'NR == 1 { print $1 }' || true)"
  [[ -n $pkg ]] || fail "dpkg -S finds no package for $so (needed by ${needed_by[$so]})"
  mapped+=("$so=$pkg")
  [[ $pkg == libc6 || $pkg == libgcc-s1 ]] && continue
  in_list "$pkg" "${runtime_pkgs[@]}" ||
    fail "Containerfile: $so (needed by ${needed_by[$so]}) comes from $pkg, which the runtime stage does not install"
done
ok "Containerfile runtime stage provides every linked library: ${mapped[*]}${skipped[*]:+ (sanitizer runtimes of this test build not counted: ${skipped[*]})}"

# The build stage installs the package of every pkg-config module and the protoc-c that
# CMakeLists.txt asks for, and a compiler.
mods=$(sed -nE 's/^pkg_check_modules\([A-Z_]+ REQUIRED IMPORTED_TARGET ([a-z0-9_.+-]+).*/\1/p' "$src/CMakeLists.txt")
[[ -n $mods ]] || fail "found no pkg_check_modules in CMakeLists.txt"
for m in $mods protoc-c; do
  if [[ $m == protoc-c ]]; then
    file="$(command -v protoc-c)" || fail "protoc-c is missing here"
  else
    file="$(pkg-config --variable=pcfiledir "$m")/$m.pc" || fail "pkg-config does not know $m"
  fi
  pkg="$(dpkg -S "$file" 2>/dev/null | awk -F: 'NR == 1 { print $1 }' || true)"
  [[ -n $pkg ]] || pkg="$(dpkg -S "$(realpath "$file")" 2>/dev/null | awk -F: 'NR == 1 { print $1 }' || true)"
  # merged /usr: the package may list the file under the other half of the alias
  [[ -n $pkg ]] || pkg="$(dpkg -S "*${file#/usr}" 2>/dev/null | awk -F: 'NR == 1 { print $1 }' || true)"
  [[ -n $pkg ]] || fail "dpkg -S finds no package for $file ($m)"
  in_list "$pkg" "${build_pkgs[@]}" ||
    fail "Containerfile: the build stage does not install $pkg, which provides $m for CMakeLists.txt"
done
for p in build-essential cmake pkg-config; do
  in_list "$p" "${build_pkgs[@]}" || fail "Containerfile: the build stage does not install $p"
done
ok "Containerfile build stage installs the package of every module CMake wants: ${mods//$'\n'/ } protoc-c"

# The sources the build stage copies are enough for CMake: configure a copy made of exactly
# them (COPY SRC... DEST relative to the repository root), and find the three targets.
mkdir -p "$tmp/ctx"
srcdir_in_image="$("$py" - "$tmp/cf.json" "$src" "$tmp/ctx" 2>"$tmp/py.err" <<'PY'
import json, os, posixpath, re, shutil, sys
stages, src, ctx = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
st = stages[0]
workdir = st["workdir"] or "/"
def put(path, target):  # Docker's COPY: a directory's contents, or a file
    if os.path.isdir(path):
        shutil.copytree(path, target, dirs_exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(path, target)
for args in st["copy"]:
    if any(a.startswith("--from") for a in args):
        continue
    args = [a for a in args if not a.startswith("--")]
    *sources, dest = args
    into = dest.endswith("/") or len(sources) > 1
    dest = posixpath.normpath(posixpath.join(workdir, dest))
    for s in sources:
        path = os.path.join(src, s)
        if not os.path.exists(path):
            sys.exit(f"COPY {s}: not in the repository")
        if into and not os.path.isdir(path):
            put(path, ctx + posixpath.join(dest, posixpath.basename(s.rstrip("/"))))
        else:
            put(path, ctx + dest)
run = " ".join(st["run"])
m = re.search(r"cmake\s+-S\s+(\S+)", run)
if not m:
    sys.exit("the build stage runs no cmake -S")
print(posixpath.normpath(posixpath.join(workdir, m.group(1))))
PY
)" || fail "Containerfile: cannot replay the build stage's COPY lines: $(cat "$tmp/py.err")"
cmake -S "$tmp/ctx$srcdir_in_image" -B "$tmp/ctx/build" >"$tmp/ctx.log" 2>&1 ||
  fail "CMake cannot configure the sources the build stage copies (a directory missing from its COPY lines?): $(tail -n 20 "$tmp/ctx.log")"
cmake --build "$tmp/ctx/build" --target help >"$tmp/targets.txt" 2>&1 || fail "cmake --target help failed"
run_line="$(cfq '" ".join(s[0]["run"])')"
runtime_copies="$(cfq '"\n".join(" ".join(c) for c in s[-1]["copy"])')"
for t in pkcs-worker pkcs-coordinator pkcsctl; do
  grep -qE "^\.\.\. $t$" "$tmp/targets.txt" || fail "the copied sources define no target $t"
  grep -qE -- "--target [^&]*\b$t\b" <<<"$run_line" || fail "Containerfile: the build stage does not build $t"
  grep -qE -- "--from=$build_stage_name .*/build/$t( |$)" <<<"$runtime_copies" ||
    fail "Containerfile: the runtime stage does not copy $t from the $build_stage_name stage"
done
ok "the build stage's copied sources configure with CMake and define pkcs-worker, pkcs-coordinator, pkcsctl, which it builds and the runtime stage copies"

image_user="$(cfq 's[-1]["user"] or ""')"
image_uid="${image_user%%:*}"
[[ $image_uid =~ ^[0-9]+$ && $image_uid != 0 ]] || fail "Containerfile: USER '$image_user' is not a numeric non-root user"
grep -q "useradd .*--uid $image_uid" "$cf" || fail "Containerfile: no user is made with uid $image_uid"
[[ $(cfq 's[-1]["entrypoint"]') == "['/usr/local/bin/pkcs-entrypoint']" ]] ||
  fail "Containerfile: ENTRYPOINT is not /usr/local/bin/pkcs-entrypoint"
grep -qE '^COPY deploy/container/entrypoint\.sh /usr/local/bin/pkcs-entrypoint$' "$cf" ||
  fail "Containerfile: does not install deploy/container/entrypoint.sh as /usr/local/bin/pkcs-entrypoint"
grep -q '"healthcheck"' <<<"$(cfq 's[-1]["healthcheck"]')" || fail "Containerfile: no HEALTHCHECK through the entry point"
[[ $(cfq 's[-1]["env"].get("PC_HTTP_HOST")') == 0.0.0.0 ]] || fail "Containerfile: PC_HTTP_HOST is not 0.0.0.0"
[[ $(cfq 'sorted(s[-1]["expose"])') == "[9464, 9470]" ]] || fail "Containerfile: EXPOSE is not 9464 and 9470"
# COPY keeps the file's mode: the entry point must be executable in git (or on disk, outside git).
mode="$(git -C "$src" ls-files -s deploy/container/entrypoint.sh 2>/dev/null || true)"
if [[ -n $mode ]]; then
  [[ ${mode%% *} == 100755 ]] || fail "deploy/container/entrypoint.sh is not executable in git (${mode%% *}): COPY keeps the mode"
else
  [[ -x $deploy/container/entrypoint.sh ]] || fail "deploy/container/entrypoint.sh is not executable: COPY keeps the mode"
fi
ok "Containerfile: non-root USER $image_user, HEALTHCHECK and ENTRYPOINT through pkcs-entrypoint, ports 9464 9470"

# The entry point, with its program folder pointed at stand-ins that print how they were run.
ep="$tmp/ep"
mkdir -p "$ep/bin" "$ep/conf"
for b in pkcs-worker pkcs-coordinator pkcsctl; do
  printf '#!/bin/sh\necho "%s $* config=${PC_CONFIG:-none}"\n' "$b" >"$ep/bin/$b"
  chmod +x "$ep/bin/$b"
done
sed -e "s#^bindir=.*#bindir=$ep/bin#" -e "s#^confdir=.*#confdir=$ep/conf#" \
  "$deploy/container/entrypoint.sh" >"$ep/entrypoint"
chmod +x "$ep/entrypoint"
grep -q "^bindir=$ep/bin" "$ep/entrypoint" && grep -q "^confdir=$ep/conf" "$ep/entrypoint" ||
  fail "entrypoint.sh: no bindir= or confdir= line to point at the stand-ins"
sh -n "$deploy/container/entrypoint.sh" || fail "entrypoint.sh: sh -n reports a syntax error"
got="$(env -u PC_CONFIG sh "$ep/entrypoint" worker --version)"
[[ $got == "pkcs-worker --version config=none" ]] || fail "entrypoint worker --version ran: '$got'"
echo '{}' >"$ep/conf/config.json"
got="$(env -u PC_CONFIG sh "$ep/entrypoint" coordinator)"
[[ $got == "pkcs-coordinator  config=$ep/conf/config.json" ]] || fail "entrypoint coordinator ran: '$got'"
got="$(PC_CONFIG=/x.json sh "$ep/entrypoint" pkcsctl status --json)"
[[ $got == "pkcsctl status --json config=/x.json" ]] || fail "entrypoint pkcsctl ran: '$got'"
rc=0
sh "$ep/entrypoint" bogus >/dev/null 2>"$tmp/ep.err" || rc=$?
[[ $rc == 2 ]] && grep -q "unknown program 'bogus'" "$tmp/ep.err" || fail "entrypoint bogus: exit $rc, '$(cat "$tmp/ep.err")'"
rc=0
sh "$ep/entrypoint" >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "entrypoint without a program exited $rc, not 2"
ok "entry point: worker, coordinator, pkcsctl run their program with their arguments (config file found when mounted); bad calls exit 2"

# Its health check against a stub /readyz on 127.0.0.1 whose answer a file decides.
echo 200 >"$tmp/ready.status"
python3 - "$tmp/ready.status" "$tmp/stub.port" <<'PY' >"$tmp/stub.log" 2>&1 &
import http.server, sys
status_file, port_file = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = int(open(status_file).read()) if self.path == "/readyz" else 404
        body = b"ready\n" if code == 200 else b"not ready: kafka unreachable\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(port_file + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(port_file + ".tmp", port_file)
s.timeout = 0.5
import time
deadline = time.time() + 120
while time.time() < deadline:
    s.handle_request()
PY
stub_pid=$!
for _ in $(seq 50); do [[ -s $tmp/stub.port ]] && break; sleep 0.1; done
[[ -s $tmp/stub.port ]] || fail "the stub /readyz server did not start: $(cat "$tmp/stub.log")"
port="$(cat "$tmp/stub.port")"
PC_HTTP_PORT="$port" sh "$ep/entrypoint" healthcheck worker >"$tmp/hc.out" 2>&1 ||
  fail "healthcheck worker failed against a ready /readyz: $(cat "$tmp/hc.out")"
PC_COORDINATOR_PORT="$port" sh "$ep/entrypoint" healthcheck coordinator >/dev/null 2>&1 ||
  fail "healthcheck coordinator failed against a ready /readyz"
echo 503 >"$tmp/ready.status"
if PC_HTTP_PORT="$port" sh "$ep/entrypoint" healthcheck worker >"$tmp/hc.out" 2>&1; then
  fail "healthcheck worker passed while /readyz answers 503"
fi
grep -q "kafka unreachable" "$tmp/hc.out" || fail "healthcheck does not show /readyz's reason: $(cat "$tmp/hc.out")"
ok "entry point healthcheck: 0 when /readyz answers 200, non-zero with the reason on 503 (worker and coordinator ports)"

# Without a name it finds the program running in the container: checked in a PID namespace of
# its own (root only), with stand-ins whose process names are the programs'.
if unshare --pid --fork --mount-proc true 2>/dev/null; then
  echo 200 >"$tmp/ready.status"
  for role in worker coordinator; do
    printf '#!/bin/sh\nsleep 30\n' >"$ep/pkcs-$role"
    chmod +x "$ep/pkcs-$role"
    PC_HTTP_PORT=1 PC_COORDINATOR_PORT=1 unshare --pid --fork --mount-proc sh -c '
      "$1" & sleep 0.3
      if [ "$2" = worker ]; then PC_HTTP_PORT=$3; else PC_COORDINATOR_PORT=$3; fi
      export PC_HTTP_PORT PC_COORDINATOR_PORT
      sh "$4" healthcheck; rc=$?; kill $! 2>/dev/null; exit $rc' _ "$ep/pkcs-$role" "$role" "$port" "$ep/entrypoint" \
      >"$tmp/hc.out" 2>&1 || fail "healthcheck did not find the running pkcs-$role: $(cat "$tmp/hc.out")"
  done
  rc=0
  unshare --pid --fork --mount-proc sh "$ep/entrypoint" healthcheck >"$tmp/hc.out" 2>&1 || rc=$?
  [[ $rc != 0 ]] && grep -q "neither pkcs-worker nor pkcs-coordinator" "$tmp/hc.out" ||
    fail "healthcheck with no program running: exit $rc, '$(cat "$tmp/hc.out")'"
  ok "entry point healthcheck finds the running pkcs-worker or pkcs-coordinator by itself, and fails when neither runs"
else
  echo "note: unshare --pid is not allowed here (not root): the health check's own detection of the running program was not exercised"
fi
kill "$stub_pid" 2>/dev/null || true
wait "$stub_pid" 2>/dev/null || true
stub_pid=""

# ---- Kubernetes ------------------------------------------------------------------------------
k8s="$deploy/k8s"
mapfile -t manifests < <(find "$k8s" -name '*.yaml' | sort)
((${#manifests[@]} >= 5)) || fail "deploy/k8s holds ${#manifests[@]} manifests"
for v in "${k8s_versions[@]}"; do
  # --quiet leaves warnings and errors only; a warning (e.g. an unknown apiVersion, whose
  # schema cannot be found) fails too.
  "$kval" --strict --quiet -k "$v" "${manifests[@]}" >"$tmp/kval.out" 2>&1 ||
    fail "kubernetes-validate --strict -k $v: $(cat "$tmp/kval.out")"
  [[ ! -s $tmp/kval.out ]] || fail "kubernetes-validate -k $v warned: $(cat "$tmp/kval.out")"
done
ok "kubernetes-validate --strict: ${#manifests[@]} manifest files valid for Kubernetes ${k8s_versions[*]}"

"$py" - "$k8s" "$tmp/k8s-config.json" "$drain_ms" "$max_instances" "$image_uid" 2>"$tmp/py.err" <<'PY' || fail "Kubernetes manifests: $(cat "$tmp/py.err")"
import glob, json, os, posixpath, sys, yaml
k8s, config_out, drain_default, max_inst_default, image_uid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
docs = []
for f in sorted(glob.glob(os.path.join(k8s, "**", "*.yaml"), recursive=True)):
    for d in yaml.safe_load_all(open(f)):
        if d:
            docs.append((os.path.relpath(f, k8s), d))
errors = []
def err(msg):
    errors.append(msg)
def find(kind, name=None):
    return [d for _, d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
def one(kind, name):
    found = find(kind, name)
    if len(found) != 1:
        err(f"want exactly one {kind} {name}, found {len(found)}")
        return None
    return found[0]
ns = {d["metadata"].get("namespace") for _, d in docs if d["kind"] != "Namespace"}
if ns != {"pkcs-connector"} or not find("Namespace", "pkcs-connector"):
    err(f"every object should be in the namespace pkcs-connector, which should be defined: {ns}")

cm = one("ConfigMap", "pkcs-connector-config")
try:
    config = json.loads(cm["data"]["config.json"]) if cm else {}
except ValueError as e:
    sys.exit(f"ConfigMap pkcs-connector-config: config.json is not JSON: {e}")
json.dump(config, open(config_out, "w"))
secrets = {d["metadata"]["name"]: d for d in find("Secret")}
configmaps = {d["metadata"]["name"]: d for d in find("ConfigMap")}
wcfg, ccfg = config.get("worker", {}), config.get("coordinator", {})

def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}
def check_pod(dep, component, port, http_env):
    name = dep["metadata"]["name"]
    spec = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    sel = dep["spec"]["selector"]["matchLabels"]
    if any(labels.get(k) != v for k, v in sel.items()):
        err(f"{name}: selector {sel} does not match the pod labels {labels}")
    if labels.get("app.kubernetes.io/component") != component:
        err(f"{name}: pod label app.kubernetes.io/component is not {component}")
    sc = spec.get("securityContext", {})
    if not sc.get("runAsNonRoot") or sc.get("runAsUser") != image_uid:
        err(f"{name}: wants runAsNonRoot and runAsUser {image_uid} (the image's USER)")
    c = spec["containers"][0]
    if c.get("args", [None])[0] != component:
        err(f"{name}: args should start with '{component}' (the entry point's program)")
    csc = c.get("securityContext", {})
    if csc.get("allowPrivilegeEscalation") is not False or not csc.get("readOnlyRootFilesystem") \
            or csc.get("capabilities", {}).get("drop") != ["ALL"]:
        err(f"{name}: wants allowPrivilegeEscalation false, readOnlyRootFilesystem, drop ALL")
    env = env_of(c)
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    if port not in ports.values():
        err(f"{name}: no containerPort {port}")
    for var, want in http_env.items():
        if env.get(var, {}).get("value") != want:
            err(f"{name}: env {var} should be {want!r}, is {env.get(var, {}).get('value')!r}")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        g = c.get(probe, {}).get("httpGet", {})
        p = g.get("port")
        if g.get("path") != path or ports.get(p, p) != port:
            err(f"{name}: {probe} should GET {path} on port {port}, is {g}")
    ann = dep["spec"]["template"]["metadata"].get("annotations", {})
    if ann.get("prometheus.io/port") != str(port):
        err(f"{name}: annotation prometheus.io/port should be {port}")
    # volumes: every mount has a volume; every ConfigMap and Secret volume names one defined
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {}
    for m in c.get("volumeMounts", []):
        v = vols.get(m["name"])
        if v is None:
            err(f"{name}: volumeMount {m['name']} has no volume")
            continue
        mounts[m["mountPath"]] = v
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            err(f"{name}: volume {v['name']} uses ConfigMap {v['configMap']['name']}, not defined here")
        if "secret" in v and v["secret"]["secretName"] not in secrets:
            err(f"{name}: volume {v['name']} uses Secret {v['secret']['secretName']}, not in examples/secrets.yaml")
    for e in env.values():
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            s = secrets.get(ref["name"])
            if s is None or ref["key"] not in s.get("stringData", {}) | s.get("data", {}):
                err(f"{name}: env {e['name']} refers to Secret {ref['name']} key {ref['key']}, not in examples/secrets.yaml")
    def mount_for(path):
        best = None
        for mp in mounts:
            if path == mp or path.startswith(mp.rstrip("/") + "/"):
                if best is None or len(mp) > len(best):
                    best = mp
        return best
    def file_in_volume(path, what):
        mp = mount_for(path)
        if mp is None:
            err(f"{name}: {what} {path} is on no volume (the root file system is read-only)")
            return
        v, rel = mounts[mp], posixpath.relpath(path, mp)
        if "secret" in v:
            s = secrets[v["secret"]["secretName"]]
            if rel not in s.get("stringData", {}) | s.get("data", {}):
                err(f"{name}: {what} {path}: Secret {s['metadata']['name']} has no key {rel}")
        elif "configMap" in v:
            if rel not in configmaps[v["configMap"]["name"]].get("data", {}):
                err(f"{name}: {what} {path}: ConfigMap {v['configMap']['name']} has no key {rel}")
        elif "emptyDir" not in v:
            err(f"{name}: {what} {path} is on volume {v['name']}, neither a Secret, a ConfigMap nor an emptyDir")
    cfg_path = env.get("PC_CONFIG", {}).get("value")
    if not cfg_path:
        err(f"{name}: no PC_CONFIG")
    else:
        file_in_volume(cfg_path, "PC_CONFIG")
    # every file the configuration names is in the pod; the state folder is writable
    def walk(v, key=""):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, k)
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, str) and v.startswith("/"):
            if key == "state_dir":
                mp = mount_for(v)
                if mp is None or "emptyDir" not in mounts[mp]:
                    err(f"{name}: state_dir {v} is not on an emptyDir (writable) volume")
            else:
                file_in_volume(v, f"configuration {key}")
    walk(config)
    env_state = env.get("PC_STATE_DIR", {}).get("value")
    if not config.get("state_dir") and not env_state:
        err(f"{name}: no state_dir: the default ./state is on the read-only root")
    return spec, c, env

worker = one("Deployment", "pkcs-worker")
coord = one("Deployment", "pkcs-coordinator")
if worker:
    wport = int(wcfg.get("http_port", 9464))
    spec, c, env = check_pod(worker, "worker", wport, {"PC_HTTP_HOST": "0.0.0.0", "PC_HTTP_PORT": str(wport)})
    drain = int(env.get("PC_DRAIN_TIMEOUT_MS", {}).get("value") or wcfg.get("drain_timeout_ms", drain_default))
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace * 1000 <= drain:
        err(f"pkcs-worker: terminationGracePeriodSeconds {grace} s is not longer than the drain timeout {drain} ms")
    if env.get("PC_THREADPOOL_SIZE") is None and "threadpool_size" not in wcfg:
        err("pkcs-worker: no thread pool size: in a pod the default is the node's core count")
    if "PC_WORKER_ID" not in env:
        err("pkcs-worker: no PC_WORKER_ID")
    print(f"worker: drain {drain} ms, grace {grace} s")
if coord:
    cport = int(ccfg.get("http_port", 9470))
    check_pod(coord, "coordinator", cport, {"PC_COORDINATOR_HOST": "0.0.0.0", "PC_COORDINATOR_PORT": str(cport)})
    svc = one("Service", "pkcs-coordinator")
    if svc:
        pl = coord["spec"]["template"]["metadata"]["labels"]
        if any(pl.get(k) != v for k, v in svc["spec"]["selector"].items()):
            err("Service pkcs-coordinator: selector does not match the coordinator pods")
        ports = coord["spec"]["template"]["spec"]["containers"][0]["ports"]
        names = {p.get("name"): p["containerPort"] for p in ports}
        for p in svc["spec"]["ports"]:
            t = p.get("targetPort", p["port"])
            if names.get(t, t) != cport:
                err(f"Service pkcs-coordinator: port {p['port']} targets {t}, not the coordinator's {cport}")

pdb = find("PodDisruptionBudget")
if worker and not any(all(worker["spec"]["template"]["metadata"]["labels"].get(k) == v
                          for k, v in p["spec"]["selector"]["matchLabels"].items()) for p in pdb):
    err("no PodDisruptionBudget selects the worker pods")

hpa = one("HorizontalPodAutoscaler", "pkcs-worker")
if hpa:
    ref = hpa["spec"]["scaleTargetRef"]
    if (ref["kind"], ref["name"]) != ("Deployment", "pkcs-worker"):
        err(f"HPA scales {ref}, not Deployment pkcs-worker")
    lag = [m for m in hpa["spec"]["metrics"]
           if m["type"] in ("Pods", "External") and m[m["type"].lower()]["metric"]["name"] == "pkcs_consumer_lag"]
    if not lag:
        err("the HPA does not scale on pkcs_consumer_lag (a Pods or External metric)")
    parts = int(ccfg.get("topic_partitions", 128))
    maxi = int(wcfg.get("max_instances", max_inst_default))
    if hpa["spec"]["maxReplicas"] > min(parts, maxi):
        err(f"HPA maxReplicas {hpa['spec']['maxReplicas']} is over the partitions ({parts}) or worker.max_instances ({maxi})")
    text = open(os.path.join(k8s, [f for f, d in docs if d is hpa][0])).read()
    if "adapter" not in text.lower():
        err("the HPA's file does not say that pkcs_consumer_lag needs a Prometheus adapter")
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
PY
ok "manifests agree with each other and the image: probes on /readyz and /healthz, ports, labels, PDB, Service, HPA on pkcs_consumer_lag within the partitions, every configured file on a volume, grace period longer than the drain"

lint_config "$tmp/k8s-config.json" "the ConfigMap's config.json"
ok "the ConfigMap's config.json loads with the real parser; the sample profiles lint against it"

# ---- monitoring --------------------------------------------------------------------------------
mon="$deploy/monitoring"
promtool check rules "$mon/alerts.yml" >"$tmp/rules.out" 2>&1 || fail "promtool check rules: $(cat "$tmp/rules.out")"
(cd "$mon" && promtool test rules alerts_test.yml) >"$tmp/rtest.out" 2>&1 ||
  fail "promtool test rules alerts_test.yml: $(cat "$tmp/rtest.out")"
promtool check config "$mon/prometheus.yml" >"$tmp/pconf.out" 2>&1 ||
  fail "promtool check config prometheus.yml: $(cat "$tmp/pconf.out")"
# Debian's promtool is built without Kubernetes discovery: check the Kubernetes configuration
# (its relabelling) with the discovery swapped for a static target.
mkdir -p "$tmp/mon"
cp "$mon/alerts.yml" "$tmp/mon/"
"$py" - "$mon/prometheus-kubernetes.yml" "$tmp/mon/prometheus-kubernetes.yml" 2>"$tmp/py.err" <<'PY' || fail "prometheus-kubernetes.yml: $(cat "$tmp/py.err")"
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
n = 0
for job in c["scrape_configs"]:
    if job.pop("kubernetes_sd_configs", None) is not None:
        job["static_configs"] = [{"targets": ["127.0.0.1:9464"]}]
        n += 1
if n == 0:
    sys.exit("prometheus-kubernetes.yml has no kubernetes_sd_configs")
yaml.safe_dump(c, open(sys.argv[2], "w"))
PY
promtool check config "$tmp/mon/prometheus-kubernetes.yml" >"$tmp/pconf.out" 2>&1 ||
  fail "promtool check config prometheus-kubernetes.yml (discovery replaced by a static target): $(cat "$tmp/pconf.out")"
ok "promtool: alerts.yml valid, alerts_test.yml passes, prometheus.yml and prometheus-kubernetes.yml (relabelling) valid"

"$py" - "$mon" "$tmp/metrics.json" "$tmp/dash-rules.yml" "$src/docs/operations.md" 2>"$tmp/py.err" <<'PY' || fail "monitoring: $(cat "$tmp/py.err")"
import json, os, re, sys, yaml
mon, exported_file, dash_rules, ops = sys.argv[1:5]
exp = json.load(open(exported_file))
metrics, known_labels, known_values = exp["metrics"], set(exp["labels"]), set(exp["values"])
# Names a query may use: counters and gauges as registered, histograms' series.
names = set()
for n, kind in metrics.items():
    names |= {n + s for s in ("_bucket", "_sum", "_count")} if kind == "histogram" else {n}
builtin = {"up"}                       # Prometheus' own, per target
target_labels = {"instance", "job", "le", "namespace", "pod"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN"}
errors = []

def strip_strings(e):
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', e)

def check_expr(expr, where):
    bare = strip_strings(expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    found = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_.:$])[A-Za-z_:][A-Za-z0-9_:]*", bare):
        tok = m.group(0)
        if tok in KEYWORDS or bare[m.end():].lstrip().startswith("("):
            continue
        found.add(tok)
        if tok not in names and tok not in builtin:
            errors.append(f"{where}: metric {tok} is not exported by the code (expr: {expr.strip()})")
    # label matchers on our metrics: known label names; values the code can produce
    for sel in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}", expr):
        metric, body = sel.group(1), sel.group(2)
        if metric in builtin:
            continue
        for lab, op, val in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', body):
            if lab not in known_labels and lab not in target_labels:
                errors.append(f"{where}: label {lab} on {metric} is not one the code sets")
            if lab in known_labels and "$" not in val:
                alts = val.split("|") if op in ("=~", "!~") else [val]
                for a in alts:
                    if re.fullmatch(r"[A-Za-z0-9_.-]+", a) and a not in known_values:
                        errors.append(f"{where}: {lab}=\"{a}\" is a value the code never sets")
    for lab in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        for l in [x.strip() for x in lab.split(",") if x.strip()]:
            if l not in known_labels and l not in target_labels:
                errors.append(f"{where}: groups by {l}, a label the code does not set")
    return found

used = set()
# alert rules
rules = yaml.safe_load(open(os.path.join(mon, "alerts.yml")))
alerts = []
for g in rules["groups"]:
    for r in g["rules"]:
        name = r.get("alert") or r.get("record")
        used |= check_expr(r["expr"], f"alerts.yml {name}")
        if "alert" in r:
            alerts.append(name)
            if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                errors.append(f"alerts.yml {name}: severity should be critical, warning or info")
            if not r.get("annotations", {}).get("summary") or not r.get("annotations", {}).get("description"):
                errors.append(f"alerts.yml {name}: wants summary and description annotations")
# every alert fires in at least one test of alerts_test.yml
tests = yaml.safe_load(open(os.path.join(mon, "alerts_test.yml")))
fired = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
for t in tests["tests"]:
    for s in t.get("input_series", []):
        check_expr(s["series"], "alerts_test.yml input")
for a in alerts:
    if a not in fired:
        errors.append(f"alerts.yml {a}: no test in alerts_test.yml expects it to fire")
docs = open(ops).read()
for a in alerts:
    if f"`{a}`" not in docs:
        errors.append(f"docs/operations.md does not explain the alert {a}")

# dashboard
try:
    dash = json.load(open(os.path.join(mon, "dashboard.json")))
except ValueError as e:
    sys.exit(f"dashboard.json is not JSON: {e}")
for key in ("title", "uid", "schemaVersion", "panels"):
    if key not in dash:
        errors.append(f"dashboard.json: no {key}")
variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
if variables.get("datasource", {}).get("type") != "datasource" or variables["datasource"].get("query") != "prometheus":
    errors.append("dashboard.json: wants a Prometheus data source variable named datasource")
for name, v in variables.items():
    if v.get("type") == "query":
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.match(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)\s*\)$", q or "")
        if not m:
            errors.append(f"dashboard.json variable {name}: query {q!r} is not label_values(metric, label)")
        else:
            used |= check_expr(m.group(1), f"dashboard.json variable {name}")
ids, exprs = set(), []
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
for p in panels(dash.get("panels", [])):
    title = p.get("title", "?")
    if p.get("id") in ids:
        errors.append(f"dashboard.json: panel id {p.get('id')} used twice")
    ids.add(p.get("id"))
    gp = p.get("gridPos", {})
    if not all(k in gp for k in "hwxy") or gp["x"] + gp["w"] > 24:
        errors.append(f"dashboard.json panel {title}: bad gridPos {gp}")
    if p.get("type") == "row":
        continue
    if p.get("datasource", {}).get("uid") != "${datasource}":
        errors.append(f"dashboard.json panel {title}: datasource is not ${{datasource}}")
    targets = p.get("targets", [])
    if not targets:
        errors.append(f"dashboard.json panel {title}: no query")
    refs = [t.get("refId") for t in targets]
    if len(set(refs)) != len(refs):
        errors.append(f"dashboard.json panel {title}: refIds repeat")
    for t in targets:
        e = t.get("expr", "")
        if not e.strip():
            errors.append(f"dashboard.json panel {title}: empty expr")
            continue
        used |= check_expr(e, f"dashboard.json panel {title}")
        # Grafana's variables, made concrete for promtool
        c = e.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
        c = re.sub(r"\$\{?(\w+)\}?", lambda m: ".*" if m.group(1) in variables else m.group(0), c)
        if "$" in c:
            errors.append(f"dashboard.json panel {title}: unknown variable in {e}")
        exprs.append((title, c))
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
    {"record": f"dashboard:query:{i}", "expr": c} for i, (_, c) in enumerate(exprs)]}]},
    open(dash_rules, "w"))
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
unused = sorted(n for n in metrics if not any(u == n or u.startswith(n + "_") for u in used))
print(f"{len(alerts)} alerts, {len(exprs)} dashboard queries, metrics used: {len(used)}"
      + (f"; exported but shown nowhere: {', '.join(unused)}" if unused else "; every exported metric is used"))
PY
promtool check rules "$tmp/dash-rules.yml" >"$tmp/dash.out" 2>&1 ||
  fail "the dashboard's queries are not valid PromQL (promtool, variables replaced): $(cat "$tmp/dash.out")"
ok "every metric and label in alerts.yml, alerts_test.yml and dashboard.json is one the code exports; each alert fires in a test and is explained in docs/operations.md; the dashboard's queries parse"

echo "$pass passed, 0 failed"
