#!/usr/bin/env bash
# package_test.sh BUILD_DIR: builds the .deb from BUILD_DIR with CPack into a scratch
# directory and checks it as a user's tools see it. Every process it starts is ended by pid.
set -euo pipefail
build="$1"
scratch="$(mktemp -d)"
daemon=""
cleanup() {
  if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
    kill -TERM "$daemon"
    for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() { echo "package_test: $*" >&2; exit 1; }

cpack -G DEB -B "$scratch/out" --config "$build/CPackConfig.cmake" >"$scratch/cpack.log" 2>&1 ||
  { cat "$scratch/cpack.log" >&2; fail "cpack failed"; }
deb="$(ls "$scratch"/out/warden_*.deb)"
echo "package: $deb"

# Contents: the programs, the unit, the docs.
dpkg-deb -c "$deb" >"$scratch/contents"
for path in ./usr/bin/wardend ./usr/bin/warden ./usr/lib/systemd/system/wardend.service \
  ./usr/share/doc/warden/README.md ./usr/share/doc/warden/api.md \
  ./usr/share/doc/warden/schema/schema.sql; do
  grep -q " $path\$" "$scratch/contents" || { cat "$scratch/contents" >&2; fail "no $path"; }
done
if grep -q "test\|bench" "$scratch/contents"; then fail "tests or benchmarks in the package"; fi

# Control: dependencies from the libraries the programs link, and the maintainer scripts.
dpkg-deb -I "$deb" >"$scratch/info"
for dep in libc6 libsqlite3-0 libboost-json1.81.0 libboost-program-options1.81.0 libspdlog1.1; do
  grep -q "^ Depends:.*$dep" "$scratch/info" || { cat "$scratch/info" >&2; fail "Depends lacks $dep"; }
done
grep -q "^ Package: warden$" "$scratch/info" || fail "package name"
grep -qw postinst "$scratch/info" || fail "no postinst"
dpkg-deb -e "$deb" "$scratch/control"
grep -q "mkdir -p /var/lib/warden" "$scratch/control/postinst" || fail "postinst makes no /var/lib/warden"
if grep -Eq "systemctl (enable|start)|deb-systemd-invoke" "$scratch/control/postinst"; then
  fail "postinst enables or starts the unit"
fi

# The unit: the installed paths, and systemd-analyze's verdicts.
root="$scratch/root"
dpkg-deb -x "$deb" "$root"
unit="$root/usr/lib/systemd/system/wardend.service"
grep -q "^ExecStart=/usr/bin/wardend " "$unit" || fail "ExecStart is not /usr/bin/wardend"
grep -q "^Documentation=file:///usr/share/doc/warden/README.md$" "$unit" || fail "Documentation="
grep -q "^KillMode=process$" "$unit" || fail "KillMode"
grep -Eq "^(ProtectControlGroups|ProtectKernelTunables)=(yes|true)" "$unit" &&
  fail "cgroupfs made read-only: containment would fall back to process groups"
grep -Eq "^ProcSubset=pid" "$unit" && fail "ProcSubset=pid hides boot_id"
if command -v systemd-analyze >/dev/null; then
  # verify needs ExecStart's binary where the unit names it: check a copy pointing into $root.
  sed "s|^ExecStart=/usr/bin/wardend|ExecStart=$root/usr/bin/wardend|" "$unit" \
    >"$scratch/wardend.service"
  systemd-analyze verify "$scratch/wardend.service" >"$scratch/verify" 2>&1 ||
    { cat "$scratch/verify" >&2; fail "systemd-analyze verify"; }
  if [ -s "$scratch/verify" ]; then cat "$scratch/verify" >&2; fail "systemd-analyze verify warns"; fi
  exposure="$(systemd-analyze security --offline=yes "$unit" 2>/dev/null |
    sed -n 's/.*Overall exposure level for wardend.service: \([0-9.]*\).*/\1/p')"
  echo "systemd-analyze security: $exposure"
  awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 8.5) }' ||
    fail "exposure $exposure, above the 8.5 the documented options give"
fi

# The packaged daemon serves.
data="$scratch/data"
mkdir -p "$data"
"$root/usr/bin/wardend" --version | grep -q "wardend" || fail "wardend --version"
"$root/usr/bin/warden" --help | grep -q "usage: warden" || fail "warden --help"
"$root/usr/bin/wardend" --data-dir "$data" --socket "$data/s.sock" >"$scratch/wardend.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -S "$data/s.sock" ] && break; sleep 0.1; done
health="$("$root/usr/bin/warden" --socket "$data/s.sock" ps 2>&1)" ||
  { cat "$scratch/wardend.log" >&2; fail "packaged warden cannot talk to packaged wardend: $health"; }
if command -v curl >/dev/null; then
  code="$(curl -s -o "$scratch/health" -w '%{http_code}' --unix-socket "$data/s.sock" \
    http://localhost/api/health)"
  [ "$code" = 200 ] || fail "GET /api/health answered $code"
fi
echo "package_test: ok"
