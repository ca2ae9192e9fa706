#!/usr/bin/env bash
# Build the test control plane from Go modules, once per version set, into a cache outside the
# work tree: kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes, with
# the staging repos pinned by replace lines and the version stamped with -ldflags -X), etcd
# and kwok. A second run finds the stamp and returns at once.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.8}"
KWOK_VERSION="${KWOK_VERSION:-0.8.0}"
CACHE="${BATCHHUB_K8S_CACHE:-$HOME/.cache/batchhub/k8s}"
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
OUT="$CACHE/$KEY"
STAMP="$OUT/.built"

if [[ -f "$STAMP" ]]; then
    echo "$OUT/bin"
    exit 0
fi
command -v go >/dev/null || { echo "build.sh: Go is needed (https://go.dev/dl/)" >&2; exit 1; }

started=$(date +%s)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT/bin"
export CGO_ENABLED=0 GOFLAGS="-trimpath -mod=mod" GOTOOLCHAIN=local

# A tools.go importing the commands keeps `go mod tidy` from dropping the pinned requirement.
pin_tools() {
    { echo '//go:build tools'; echo; echo 'package tools'; echo; echo 'import ('
      for pkg in "$@"; do echo "	_ \"$pkg\""; done
      echo ')'; } > tools.go
    go mod tidy -e >/dev/null 2>&1 || true
}

minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
staging_version="v0.${K8S_VERSION#*.}"

# --- kube-apiserver, kube-controller-manager, kube-scheduler --------------------------------
mkdir -p "$work/kube"
cd "$work/kube"
go mod init batchhub.local/kube >/dev/null 2>&1
go mod edit -require="k8s.io/kubernetes@v${K8S_VERSION}"
gomod="$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
# k8s.io/kubernetes requires its staging repos at v0.0.0 and replaces them with local paths;
# a module that depends on it must pin each one to the release's tag instead.
for repo in $(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace="${repo}=${repo}@${staging_version}"
done
pin_tools k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=v${K8S_VERSION} -X ${pkg}.gitMajor=1"
    ldflags+=" -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
    ldflags+=" -X ${pkg}.buildDate=${build_date}"
done
go build -ldflags "-s -w ${ldflags}" -o "$OUT/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler

# --- etcd ----------------------------------------------------------------------------------
mkdir -p "$work/etcd"
cd "$work/etcd"
go mod init batchhub.local/etcd >/dev/null 2>&1
go mod edit -require="go.etcd.io/etcd/server/v3@v${ETCD_VERSION}"
pin_tools go.etcd.io/etcd/server/v3
go build -ldflags "-s -w" -o "$OUT/bin/etcd" go.etcd.io/etcd/server/v3

# --- kwok ----------------------------------------------------------------------------------
mkdir -p "$work/kwok"
cd "$work/kwok"
go mod init batchhub.local/kwok >/dev/null 2>&1
go mod edit -require="sigs.k8s.io/kwok@v${KWOK_VERSION}"
pin_tools sigs.k8s.io/kwok/cmd/kwok
go build -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v${KWOK_VERSION}" \
    -o "$OUT/bin/kwok" sigs.k8s.io/kwok/cmd/kwok

date -u +%Y-%m-%dT%H:%M:%SZ > "$STAMP"
echo "build.sh: built $KEY in $(( $(date +%s) - started ))s" >&2
echo "$OUT/bin"
