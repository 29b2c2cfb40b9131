#!/usr/bin/env python3
"""rendered/<env>/ against a real kube-apiserver (scripts/kube-stack): every object accepted by
a strict server-side apply (the environment's tree through its kustomization.yaml, and the Argo CD
and Flux objects of gitops/ that the bootstrap and the roots apply), a second apply changes nothing, and an object a model change removes
is pruned while nothing else is touched.

Run against a fresh, empty cluster:
  scripts/kube-stack clean && scripts/kube-stack start && eval "$(scripts/kube-stack env)"
  python3 tests/kube/server_side_apply.py --env dev --crds ../shared/crds

Steps (each printed with its time):
  crds        the CRDs the platform needs (every file in --crds), applied and Established
  accepted    the namespaces Argo CD and Flux are installed in (their installations create them;
              the gitops/ objects live there), Namespaces and CRDs of rendered/<env>/ next, then
              everything else: no object refused, every object readable afterwards
  idempotent  applying the same tree again changes no object (content and managedFields
              identical before and after); objects whose resourceVersion still moved (an
              empty write) are listed
  prune       a model change (exposure through an Ingress instead of a Gateway) rendered with
              this repository's ehs and applied with prune: the objects it no longer renders are
              deleted, every other object stays; Namespaces are never pruned here (without
              kube-controller-manager a deleted Namespace stays Terminating forever)
"""

import argparse
import json
import os
import sys
import tempfile

from kube import (NAMESPACE_KIND, ROOT, Cluster, Results, apply_all, copy_model, group_of,
                  ident, install_crds, load_gitops, load_rendered, render_changed, show)


def managed_by(obj, manager):
    return any(f.get("manager") == manager and f.get("operation") == "Apply"
               for f in obj["metadata"].get("managedFields") or [])


def prune(cluster, previous, current, manager):
    """Deletes what `manager` applied from `previous` and `current` no longer contains, found
    in the cluster (not taken from `previous`): every object of the kinds `previous` had, in
    its namespaces, that `manager` owns by apply. Returns the pruned identities."""
    keep = {ident(o) for o in current}
    kinds = {(o["apiVersion"], o["kind"]) for o in previous}
    namespaces = {o["metadata"].get("namespace", "") for o in previous}
    pruned = []
    for api_version, kind in sorted(kinds):
        _, _, namespaced = cluster.resource(api_version, kind)
        if (group_of(api_version), kind) == NAMESPACE_KIND:
            continue
        for namespace in sorted(namespaces) if namespaced else [""]:
            if namespaced and not namespace:
                continue
            for live in cluster.list(api_version, kind, namespace):
                live.setdefault("apiVersion", api_version)
                live.setdefault("kind", kind)
                key = ident(live)
                if key not in keep and managed_by(live, manager):
                    cluster.delete(live)
                    pruned.append(key)
    return pruned


def snapshot(cluster, objects):
    """{ident: (resourceVersion, the object without resourceVersion and managedFields times)}."""
    state = {}
    for obj in objects:
        live = cluster.get(obj)
        if live is None:
            raise AssertionError(f"{show(ident(obj))} is missing")
        meta = live["metadata"]
        rv = meta.pop("resourceVersion")
        for entry in meta.get("managedFields") or []:
            entry.pop("time", None)
        state[ident(obj)] = (rv, json.dumps(live, sort_keys=True))
    return state


def rendered_tree(env_dir):
    """Everything of rendered/<env>/ that reaches a cluster (PROVENANCE does not)."""
    return load_rendered(env_dir) + load_gitops(env_dir)


def tool_namespaces(objects):
    """Namespaces the objects live in that they do not create themselves: those of the GitOps
    tools, made by installing Argo CD or Flux."""
    own = {o["metadata"]["name"] for o in objects
           if (group_of(o["apiVersion"]), o["kind"]) == NAMESPACE_KIND}
    used = {o["metadata"].get("namespace") for o in objects} - {None, ""}
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            for name in sorted(used - own)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", required=True)
    parser.add_argument("--crds", default=os.path.join(ROOT, "..", "shared", "crds"))
    args = parser.parse_args()

    cluster = Cluster.from_env()
    manager = f"ehs-{args.env}"
    objects = rendered_tree(os.path.join(ROOT, "rendered", args.env))
    results = Results(f"kube::server_side_apply::{args.env}")

    results.check("crds", lambda: f"{len(install_crds(cluster, args.crds))} CRDs Established")

    def accepted():
        for namespace in tool_namespaces(objects):
            cluster.apply(namespace, "ehs-kube-test")
        applied, refused = apply_all(cluster, objects, manager)
        if refused:
            raise AssertionError(f"{len(refused)} of {len(objects)} objects refused:\n" +
                                 "\n".join(f"      {show(k)}: {msg}" for k, msg in refused))
        snapshot(cluster, objects)
        return f"{len(applied)} objects applied"

    if not results.check("accepted", accepted):
        return results.finish()

    def idempotent():
        before = snapshot(cluster, objects)
        apply_all(cluster, objects, manager)
        after = snapshot(cluster, objects)
        changed = [k for k in before if before[k][1] != after[k][1]]
        if changed:
            raise AssertionError("a second apply changed " +
                                 ", ".join(show(k) for k in changed))
        # Same content, new resourceVersion: an empty write (a watch event, nothing else). The
        # Gateway API CRD does this on every apply, even for a minimal Gateway.
        rewritten = [show(k) for k in before if before[k][0] != after[k][0]]
        note = f"; rewritten without change: {', '.join(rewritten)}" if rewritten else ""
        return f"{len(before)} objects unchanged{note}"

    results.check("idempotent", idempotent)

    def pruned():
        with tempfile.TemporaryDirectory(prefix="ehs-kube-prune-") as work:
            copy_model(work)
            changed_dir = render_changed(
                work, args.env, lambda m: m.setdefault("exposure", {}).update(mode="ingress"))
            changed = rendered_tree(changed_dir)
        removed = {ident(o) for o in objects} - {ident(o) for o in changed}
        if not any(namespace for _, _, namespace, _ in removed):
            raise AssertionError("the model change removed no namespaced object; the test "
                                 "needs another change")
        _, refused = apply_all(cluster, changed, manager)
        if refused:
            raise AssertionError("changed tree refused: " +
                                 "; ".join(f"{show(k)}: {m}" for k, m in refused))
        done = set(prune(cluster, objects, changed, manager))
        if done != removed:
            raise AssertionError(f"pruned {sorted(map(show, done))}, the model removed "
                                 f"{sorted(map(show, removed))}")
        still = [show(k) for k in removed if cluster.get(next(o for o in objects
                                                              if ident(o) == k))]
        if still:
            raise AssertionError(f"still present after prune: {still}")
        snapshot(cluster, changed)
        return "pruned " + ", ".join(sorted(map(show, removed)))

    results.check("prune", pruned)
    return results.finish()


if __name__ == "__main__":
    sys.exit(main())
