#!/usr/bin/env bash
# Build the test control plane from Go modules, once per version set, into a cache outside the
# work tree: kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes, with
# the staging repos pinned by replace lines and the version stamped with -ldflags -X), etcd
# and kwok. The wrapper modules under modules/ pin every dependency (go.mod + go.sum); a second
# run finds the stamp and returns at once.
#
#   build.sh            build (or find) the binaries; prints the bin folder
#   build.sh --update   rewrite modules/ for the versions below, then build
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.8}"
KWOK_VERSION="${KWOK_VERSION:-0.8.0}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODULES="$HERE/modules"
CACHE="${BATCHHUB_K8S_CACHE:-$HOME/.cache/batchhub/k8s}"

update=0
[[ "${1:-}" == "--update" ]] && update=1

command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH="$PATH:/usr/local/go/bin"
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOTOOLCHAIN=local

# --- wrapper modules (only with --update) ----------------------------------------------------
# tools.go imports the commands so `go mod tidy` keeps their requirements.
write_tools() {
    { echo '//go:build tools'; echo; echo '// Package tools pins the commands built from this module.'
      echo 'package tools'; echo; echo 'import ('
      for pkg in "$@"; do printf '\t_ "%s"\n' "$pkg"; done
      echo ')'; } > tools.go
}

new_module() {  # folder, module path, module, version
    rm -rf "$MODULES/$1"; mkdir -p "$MODULES/$1"; cd "$MODULES/$1"
    go mod init "$2" >/dev/null 2>&1
    go mod edit -require="$3@$4"
    # Ask for the Go the dependency asks for, not the newer one that happens to be here.
    local gomod
    gomod="$(go mod download -json "$3@$4" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    go mod edit -go="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")" -toolchain=none
}

update_modules() {
    new_module kube batchhub.local/k8s-testenv/kube k8s.io/kubernetes "v${K8S_VERSION}"
    local gomod
    gomod="$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" \
        | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    # k8s.io/kubernetes requires its staging repos at v0.0.0 and replaces them with local
    # paths; a module that depends on it pins each one to the release's tag instead.
    local repo
    for repo in $(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod"); do
        go mod edit -replace="${repo}=${repo}@v0.${K8S_VERSION#*.}"
    done
    write_tools k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler
    go mod tidy

    new_module etcd batchhub.local/k8s-testenv/etcd go.etcd.io/etcd/server/v3 "v${ETCD_VERSION}"
    write_tools go.etcd.io/etcd/server/v3
    go mod tidy

    new_module kwok batchhub.local/k8s-testenv/kwok sigs.k8s.io/kwok "v${KWOK_VERSION}"
    write_tools sigs.k8s.io/kwok/cmd/kwok
    go mod tidy
}

# The wrapper modules must name the versions this script was asked for.
check_modules() {
    local folder module version found
    while read -r folder module version; do
        found="$(cd "$MODULES/$folder" 2>/dev/null && go list -m -f '{{.Version}}' "$module")" || true
        if [[ "$found" != "$version" ]]; then
            echo "build.sh: modules/$folder pins $module ${found:-nothing}, not $version;" \
                "run k8s-testenv/build.sh --update" >&2
            exit 1
        fi
    done <<< "kube k8s.io/kubernetes v${K8S_VERSION}
etcd go.etcd.io/etcd/server/v3 v${ETCD_VERSION}
kwok sigs.k8s.io/kwok v${KWOK_VERSION}"
}

# The cache key names the versions and a digest of the pins, so changed pins rebuild.
pins_digest() { cat "$MODULES"/kube/go.sum "$MODULES"/etcd/go.sum "$MODULES"/kwok/go.sum \
    2>/dev/null | sha256sum | cut -c1-10; }
digest="$(pins_digest || true)"
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_${digest}"
OUT="$CACHE/$KEY"
if [[ $update == 0 && -f "$OUT/.built" ]]; then
    echo "$OUT/bin"
    exit 0
fi
command -v go >/dev/null || { echo "build.sh: Go 1.24 or newer is needed (https://go.dev/dl/)" >&2; exit 1; }

started=$(date +%s)
if [[ $update == 1 ]]; then
    update_modules
    digest="$(pins_digest)"
    KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_${digest}"
    OUT="$CACHE/$KEY"
fi
check_modules
mkdir -p "$OUT/bin"
export GOFLAGS="$GOFLAGS -mod=readonly"

# --- kube-apiserver, kube-controller-manager, kube-scheduler --------------------------------
cd "$MODULES/kube"
# The release's own date, not today's, so two builds of one version print the same.
release_date="$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=v${K8S_VERSION} -X ${pkg}.gitMajor=1"
    ldflags+=" -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
    ldflags+=" -X ${pkg}.buildDate=${release_date}"
done
go build -ldflags "-s -w ${ldflags}" -o "$OUT/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
echo "build.sh: kube binaries after $(( $(date +%s) - started ))s" >&2

# --- etcd ----------------------------------------------------------------------------------
cd "$MODULES/etcd"
go build -ldflags "-s -w" -o "$OUT/bin/etcd" go.etcd.io/etcd/server/v3

# --- kwok ----------------------------------------------------------------------------------
cd "$MODULES/kwok"
go build -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v${KWOK_VERSION}" \
    -o "$OUT/bin/kwok" sigs.k8s.io/kwok/cmd/kwok

date -u +%Y-%m-%dT%H:%M:%SZ > "$OUT/.built"
echo "build.sh: built $KEY in $(( $(date +%s) - started ))s" >&2
echo "$OUT/bin"
