#!/usr/bin/env python3
"""Flux syncing rendered/<env>/ from a local Git repository into a real kube-apiserver
(scripts/kube-stack), through the Flux objects the `gitops` component renders into
rendered/<env>/gitops/: Flux's own source-controller and kustomize-controller, a repository served
by `git http-backend` on 127.0.0.1 (Flux takes only http(s) and ssh URLs), every change a commit
pushed to it. Pods never run (no kubelet): the objects Flux creates, updates and prunes are the
point.

The bootstrap is the README's: the rendered GitRepository and root Kustomization applied as they
are, with one change: the GitRepository's `spec.url` (the project's GitHub repository) becomes the
local Git server's. Everything else (the root syncing the per-component Kustomizations, their
`dependsOn` order, the GitRepository's `ignore`) is what ehs renders. The rendered intervals are
5 minutes: after each push the test asks for a reconcile the way `flux reconcile source git` does
(the `reconcile.fluxcd.io/requestedAt` annotation, what a webhook Receiver does in production);
the Kustomizations follow the new artifact on their own.

Run against a fresh cluster with the control plane up and the controllers stopped:
  scripts/kube-stack clean && scripts/kube-stack start && eval "$(scripts/kube-stack env)"
  python3 tests/kube/flux_sync.py --env dev --crds ../shared/crds
The test starts the controllers itself (`scripts/kube-stack start flux`) once the CRDs exist.

Steps (each printed with its time):
  crds          the platform's CRDs (--crds) and those of the Flux controllers as built
                (`scripts/kube-stack flux-crds`), Established
  controllers   source-controller and kustomize-controller ready
  bootstrap     the rendered GitRepository (local URL) and root Kustomization applied: every
                rendered Kustomization Ready at the pushed commit, every object of
                rendered/<env>/ in the cluster, labelled by the Kustomization of its component
  change        a model change (one more bridge replica) rendered by ehs and pushed: applied
  prune         a model change that drops the Gateway and the HTTPRoute (Ingress instead),
                pushed: both deleted, the Ingress created
  drift         the bridge StatefulSet edited by hand (kubectl-edit's field manager): reverted
                by the bridge Kustomization's next reconcile (requested, as `flux reconcile
                kustomization` does), with no commit
  bad_commit    a commit with a custom resource the API server refuses: the certificates
                Kustomization Ready=False with the API server's own message, nothing of it
                applied
  recovered     the bad commit reverted: every Kustomization Ready=True again at the new commit
"""

import argparse
import copy
import datetime
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

import yaml

from kube import (ROOT, ApiError, Cluster, Results, condition, copy_model, ident, install_crds,
                  load_gitops, load_rendered, render_changed, show, wait_for)

GIT_PORT = int(os.environ.get("EHS_KUBE_GIT_PORT", "29418"))
FLUX_NAMESPACE = os.environ.get("EHS_KUBE_FLUX_NAMESPACE", "flux-system")
KUBE_STACK = os.path.join(ROOT, "scripts", "kube-stack")
# The served repository's name: any; the rendered objects do not know it.
NAME = "ehs"
MANAGER = "ehs-kube-test"
TIMEOUT = 180


class GitHttpBackend(http.server.BaseHTTPRequestHandler):
    """Git's smart HTTP protocol: each request handed to `git http-backend` as a CGI call."""

    project_root = None

    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.cgi()

    def do_POST(self):  # noqa: N802
        self.cgi()

    def log_message(self, *args):  # quiet: the test prints its own lines
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def cgi(self):
        url = urllib.parse.urlsplit(self.path)
        body = self.read_body()
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": self.project_root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(url.path),
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        out = subprocess.run(["git", "http-backend"], input=body, env=env,
                             capture_output=True, check=False).stdout
        head, sep, payload = out.partition(b"\r\n\r\n")
        if not sep:
            head, _, payload = out.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class Repo:
    """The checkout the test commits to and the bare repository Flux reads over HTTP."""

    def __init__(self, work):
        self.checkout = os.path.join(work, "checkout")
        self.served = os.path.join(work, "served")
        self.bare = os.path.join(self.served, f"{NAME}.git")
        os.makedirs(self.checkout)
        copy_model(self.checkout)
        self.env = dict(os.environ, GIT_AUTHOR_NAME="ehs test", GIT_AUTHOR_EMAIL="test@ehs.invalid",
                        GIT_COMMITTER_NAME="ehs test", GIT_COMMITTER_EMAIL="test@ehs.invalid")
        self.git("init", "-q", "--bare", "-b", "main", self.bare, cwd=work)
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "origin", self.bare)
        self.commit("rendered/ as committed")

    def git(self, *args, cwd=None):
        return subprocess.run(["git", *args], cwd=cwd or self.checkout, env=self.env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def commit(self, message):
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", "main")
        return self.git("rev-parse", "HEAD")

    def path(self, *parts):
        return os.path.join(self.checkout, *parts)


def flux_objects(env_dir, url):
    """The rendered Flux objects: (the GitRepository with `spec.url` set to `url`, the root
    Kustomization, every Kustomization). The root is the one whose path is the gitops folder."""
    flux = [o for o in load_gitops(env_dir)
            if o["apiVersion"].split("/")[0] in ("source.toolkit.fluxcd.io",
                                                 "kustomize.toolkit.fluxcd.io")]
    sources = [o for o in flux if o["kind"] == "GitRepository"]
    syncs = [o for o in flux if o["kind"] == "Kustomization"]
    gitops_path = "./" + os.path.relpath(os.path.join(env_dir, "gitops"), os.path.dirname(
        os.path.dirname(env_dir)))
    roots = [o for o in syncs if o["spec"]["path"] == gitops_path]
    if len(sources) != 1 or len(roots) != 1:
        raise AssertionError(f"{env_dir}/gitops: {len(sources)} GitRepositories and {len(roots)} "
                             f"Kustomizations of {gitops_path}, the bootstrap needs one of each")
    source = copy.deepcopy(sources[0])
    source["spec"]["url"] = url
    return source, roots[0], syncs


def request_reconcile(cluster, obj):
    """What `flux reconcile` does: a new value of the reconcile.fluxcd.io/requestedAt
    annotation, which the controller acts on at once."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    cluster.patch(obj, {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": now}}},
                  MANAGER)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="dev")
    parser.add_argument("--crds", default=os.path.join(ROOT, "..", "shared", "crds"))
    args = parser.parse_args()

    cluster = Cluster.from_env()
    results = Results(f"kube::flux_sync::{args.env}")
    work = tempfile.mkdtemp(prefix="ehs-kube-flux-")
    server = None
    try:
        def crds():
            # The platform's CRDs, then the Flux controllers' own at the version that runs:
            # they watch every source kind (Bucket, OCIRepository, ...) and stop without one.
            count = len(install_crds(cluster, args.crds))
            flux = subprocess.run([KUBE_STACK, "flux-crds"], check=True, capture_output=True,
                                  text=True).stdout.split()
            for directory in flux:
                count += len(install_crds(cluster, directory))
            return f"{count} CRDs Established"

        results.check("crds", crds)

        def controllers():
            # What `flux install` creates before the controllers.
            cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": FLUX_NAMESPACE}}, MANAGER)
            subprocess.run([KUBE_STACK, "start", "flux"], check=True)

        if not results.check("controllers", controllers):
            return results.finish()

        repo = Repo(work)
        # No helm-controller runs here, and the chart repositories are out of reach, so the
        # operators' HelmReleases could never be Ready, and the environment's Kustomizations
        # wait for them (the root's health checks). The test syncs the environment as a
        # cluster whose operators are installed otherwise would: the same model with
        # `gitops.installOperators: false`, rendered by this ehs.
        render_changed(repo.checkout, args.env,
                       lambda m: m.setdefault("gitops", {}).update(installOperators=False))
        repo.commit("gitops: operators installed outside Flux")
        GitHttpBackend.project_root = repo.served
        server = http.server.ThreadingHTTPServer(("127.0.0.1", GIT_PORT), GitHttpBackend)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env_dir = repo.path("rendered", args.env)
        source, root, syncs = flux_objects(env_dir, f"http://127.0.0.1:{GIT_PORT}/{NAME}.git")
        if source["metadata"].get("namespace") != FLUX_NAMESPACE:
            raise SystemExit(f"the rendered GitRepository is in namespace "
                             f"{source['metadata'].get('namespace')}, the controllers in "
                             f"{FLUX_NAMESPACE} (EHS_KUBE_FLUX_NAMESPACE)")
        state = {"head": repo.git("rev-parse", "HEAD")}

        def applied_at(sync, sha):
            live = cluster.get(sync)
            ready = condition(live, "Ready") or {}
            revision = (live or {}).get("status", {}).get("lastAppliedRevision", "")
            return ready.get("status") == "True" and revision.endswith(sha)

        def all_applied(sha):
            """Every rendered Kustomization is Ready with `sha` applied."""
            return all(applied_at(sync, sha) for sync in syncs)

        def waiting(sha):
            return ", ".join(sync["metadata"]["name"] for sync in syncs
                             if not applied_at(sync, sha))

        def push(message):
            state["head"] = repo.commit(message)
            request_reconcile(cluster, source)
            return state["head"]

        def wait_applied(what):
            sha = state["head"]
            try:
                _, took = wait_for(what, lambda: all_applied(sha), TIMEOUT)
            except TimeoutError as err:
                raise AssertionError(f"{err}; not Ready at {sha[:12]}: {waiting(sha)}") from None
            return took

        def objects_present(objects):
            missing = [show(ident(o)) for o in objects if cluster.get(o) is None]
            if missing:
                raise AssertionError(f"not in the cluster: {missing}")

        def bootstrap():
            # The README's bootstrap: `kubectl apply -f` of these two files.
            cluster.apply(source, MANAGER)
            cluster.apply(root, MANAGER)
            took = wait_applied("every Kustomization Ready at the first commit")
            objects = load_rendered(env_dir)
            objects_present(objects)
            # Each object is applied by the Kustomization of its component's folder.
            wrong = []
            for obj, path in load_rendered(env_dir, with_paths=True):
                component = path.split(os.sep)[0]
                labels = cluster.get(obj)["metadata"].get("labels") or {}
                owner = labels.get("kustomize.toolkit.fluxcd.io/name")
                if owner is None or not owner.endswith(f"-{component}"):
                    wrong.append(f"{show(ident(obj))} ({owner})")
            if wrong:
                raise AssertionError(f"not applied by its component's Kustomization: {wrong}")
            return (f"{len(syncs)} Kustomizations Ready, {len(objects)} objects synced "
                    f"{took:.1f} s after the bootstrap")

        if not results.check("bootstrap", bootstrap):
            return results.finish()

        bridge = next(o for o in load_rendered(env_dir)
                      if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "ehs-bridge")
        replicas = bridge["spec"].get("replicas", 1) + 1

        def change():
            render_changed(repo.checkout, args.env,
                           lambda m: m.setdefault("bridge", {}).update(replicas=replicas))
            push(f"bridge: {replicas} replicas")
            took = wait_applied("the pushed change applied")
            live = cluster.get(bridge)["spec"]["replicas"]
            if live != replicas:
                raise AssertionError(f"ehs-bridge has {live} replicas, the commit says {replicas}")
            return f"applied {took:.1f} s after the push"

        results.check("change", change)

        def prune():
            before = load_rendered(env_dir)
            render_changed(repo.checkout, args.env,
                           lambda m: m.setdefault("exposure", {}).update(mode="ingress"))
            after = load_rendered(env_dir)
            removed = [o for o in before if ident(o) not in {ident(a) for a in after}]
            if not removed:
                raise AssertionError("the model change removed nothing; the test needs another")
            push("exposure: Ingress instead of Gateway")
            took = wait_applied("the pruning commit applied")
            left = [show(ident(o)) for o in removed if cluster.get(o) is not None]
            if left:
                raise AssertionError(f"not pruned: {left}")
            objects_present(after)
            return f"pruned {', '.join(show(ident(o)) for o in removed)} {took:.1f} s after the push"

        results.check("prune", prune)

        bridge_sync = next(s for s in syncs if s["spec"]["path"].endswith("/bridge"))

        def drift():
            wanted = cluster.get(bridge)["spec"]["replicas"]
            cluster.patch(bridge, {"spec": {"replicas": wanted + 3}}, "kubectl-edit")
            if cluster.get(bridge)["spec"]["replicas"] != wanted + 3:
                raise AssertionError("the manual edit did not take")
            request_reconcile(cluster, bridge_sync)
            _, took = wait_for("the manual edit reverted",
                               lambda: cluster.get(bridge)["spec"]["replicas"] == wanted,
                               TIMEOUT)
            return f"reverted {took:.1f} s after the edit"

        results.check("drift", drift)

        def bad_commit():
            path = repo.path("rendered", args.env, "certificates",
                             "certificate-hivemq-mqtt-tls.yaml")
            certificates = next(s for s in syncs if s["spec"]["path"].endswith("/certificates"))
            with open(path, encoding="utf-8") as f:
                good = yaml.safe_load(f)
            bad = copy.deepcopy(good)
            bad["spec"]["privateKey"] = {"algorithm": "NOPE"}
            # What the API server itself says about the object, asked directly.
            try:
                cluster.apply(bad, MANAGER, dry_run=True)
                raise AssertionError(f"the API server accepts {show(ident(bad))}; the test "
                                     "needs an invalid object")
            except ApiError as err:
                api_message = err.message
            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump(bad, f, sort_keys=False)
            good_head = state["head"]
            state["bad"] = push("certificates: an algorithm cert-manager does not know")

            def reported():
                live = cluster.get(certificates)
                ready = condition(live, "Ready") or {}
                attempted = (live or {}).get("status", {}).get("lastAttemptedRevision", "")
                source_seen = state["bad"] in ready.get("message", "") + attempted
                return live if ready.get("status") == "False" and source_seen else None

            live, took = wait_for("Ready=False for the bad commit", reported, TIMEOUT)
            message = condition(live, "Ready")["message"]
            if api_message not in message:
                raise AssertionError(f"Ready=False says {message!r}, without the API server's "
                                     f"{api_message!r}")
            if not live["status"].get("lastAppliedRevision", "").endswith(good_head):
                raise AssertionError("lastAppliedRevision moved past the last good commit")
            if "privateKey" in cluster.get(bad)["spec"]:
                raise AssertionError("the refused change reached the cluster")
            return f"{certificates['metadata']['name']} Ready=False {took:.1f} s after the push: {message}"

        results.check("bad_commit", bad_commit)

        def recovered():
            if "bad" not in state:
                raise AssertionError("no bad commit to revert (bad_commit failed early)")
            repo.git("revert", "--no-edit", "HEAD")
            repo.git("push", "-q", "origin", "main")
            state["head"] = repo.git("rev-parse", "HEAD")
            request_reconcile(cluster, source)
            took = wait_applied("Ready again after the revert")
            return f"every Kustomization Ready {took:.1f} s after the push"

        results.check("recovered", recovered)
        return results.finish()
    finally:
        if server is not None:
            server.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
