#!/usr/bin/env python3
"""Adapts manifests rendered by `kubectl kustomize` for `podman kube play`
(podman 4.3, Debian 12), changing only what podman lacks or does differently
from Kubernetes, and saying what it changed:

  - kinds podman does not play (Service, HorizontalPodAutoscaler,
    PodDisruptionBudget, NetworkPolicy, ServiceAccount, ServiceMonitor) are
    left out; Deployments and ConfigMaps are kept;
  - restartPolicy Always -> OnFailure: podman 4.3 applies the Pod's restart
    policy to init containers too, restarts the finished model copier and then
    fails to remove it; OnFailure still restarts a killed container (exit 137);
  - containerPort declarations are dropped: podman 4.3 publishes every one on
    the host (hostPort = containerPort), so three samplerd replicas would
    collide on 50051. Nothing here needs them (probes give numbers; only
    Services and NetworkPolicies, which podman does not play, use the names);
  - emptyDir volumes: podman 4.3 makes each one a named volume on disk, owned
    by root with mode 0755 (Kubernetes: 0777) and without the Memory medium or
    the size limit. They are listed (--volumes-out: name, medium, sizeLimit in
    bytes) for the caller to create first: medium Memory as a tmpfs volume of
    mode 1777 and the size limit, the others as a disk volume made mode 1777
    (a tmpfs volume is unmounted, and emptied, whenever no container uses it,
    so the model copied by the init container would be gone); podman then uses
    them. Named volumes are shared by name between the Pods podman plays;
  - --host-alias NAME=IP,IP,...: a headless Service's DNS name becomes
    hostAliases (/etc/hosts lines) of every Pod, one per replica address;
    podman has no Services and no cluster DNS.

  - --volume-prefix P: the emptyDir volumes are named P + name, so that the
    test's volumes cannot meet another user's (podman names them globally).
    ConfigMaps (kept: podman plays them as volumes) are listed in
    --volumes-out with medium "ConfigMap", for the caller's clean-up.

Usage: podman_kube.py IN.yaml OUT.yaml [--only-deployment NAME]
           [--host-alias NAME=IP,IP] [--volumes-out FILE] [--volume-prefix P]
       podman_kube.py --probes IN.yaml [--only-deployment NAME]
           prints "container probe port service" for every gRPC probe
"""
import argparse
import sys

import yaml

PLAYED = {"Deployment", "ConfigMap", "Pod", "PersistentVolumeClaim"}


def quantity_bytes(q):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    q = str(q)
    for suffix in sorted(units, key=len, reverse=True):
        if q.endswith(suffix):
            return int(float(q[: -len(suffix)]) * units[suffix])
    return int(q)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--probes", action="store_true")
    ap.add_argument("--volume-prefix", default="")
    ap.add_argument("--only-deployment", action="append", default=[])
    ap.add_argument("--host-alias", action="append", default=[])
    ap.add_argument("--volumes-out")
    args = ap.parse_args()

    with open(args.input) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if args.probes:
        for d in docs:
            if d["kind"] != "Deployment" or (args.only_deployment and
                                              d["metadata"]["name"] not in args.only_deployment):
                continue
            for c in d["spec"]["template"]["spec"]["containers"]:
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    grpc = c.get(probe, {}).get("grpc")
                    if grpc:
                        print(c["name"], probe, grpc["port"], grpc.get("service", ""))
        return
    kept, volumes = [], {}
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind not in PLAYED:
            print(f"podman_kube: leaving out {kind}/{name} (podman does not play it)",
                  file=sys.stderr)
            continue
        if kind == "Deployment" and args.only_deployment and name not in args.only_deployment:
            continue
        if kind == "Deployment":
            spec = d["spec"]["template"]["spec"]
            spec["restartPolicy"] = "OnFailure"
            for c in spec.get("initContainers", []) + spec["containers"]:
                c.pop("ports", None)
            if args.volume_prefix:
                renamed = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
                for c in spec.get("initContainers", []) + spec["containers"]:
                    for m in c.get("volumeMounts", []):
                        if m["name"] in renamed:
                            m["name"] = args.volume_prefix + m["name"]
                for v in spec.get("volumes", []):
                    if v["name"] in renamed:
                        v["name"] = args.volume_prefix + v["name"]
            for v in spec.get("volumes", []):
                if "emptyDir" in v:
                    size = quantity_bytes(v["emptyDir"].get("sizeLimit", "64Mi"))
                    medium = v["emptyDir"].get("medium") or "Disk"
                    old = volumes.get(v["name"], (0, medium))
                    volumes[v["name"]] = (max(old[0], size), medium)
            aliases = []
            for alias in args.host_alias:
                host, ips = alias.split("=", 1)
                aliases += [{"ip": ip, "hostnames": [host]} for ip in ips.split(",") if ip]
            if aliases:
                spec["hostAliases"] = aliases
        kept.append(d)
    with open(args.output, "w") as f:
        yaml.safe_dump_all(kept, f, sort_keys=False)
    if args.volumes_out:
        with open(args.volumes_out, "w") as f:
            for name, (size, medium) in sorted(volumes.items()):
                f.write(f"{name} {medium} {size}\n")
            # podman makes a volume of each ConfigMap too (and keeps it after
            # kube down): listed for the caller to remove.
            for d in kept:
                if d["kind"] == "ConfigMap":
                    f.write(f"{d['metadata']['name']} ConfigMap 0\n")


if __name__ == "__main__":
    main()
