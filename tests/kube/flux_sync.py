#!/usr/bin/env python3
"""Flux syncing rendered/<env>/ from a local Git repository into a real kube-apiserver
(scripts/kube-stack): Flux's own source-controller and kustomize-controller, a repository served
by `git http-backend` on 127.0.0.1 (Flux takes only http(s) and ssh URLs), every change a commit
pushed to it. Pods never run (no kubelet): the objects Flux creates, updates and prunes are the
point.

Run against a fresh cluster with the control plane up and the controllers stopped:
  scripts/kube-stack clean && scripts/kube-stack start && eval "$(scripts/kube-stack env)"
  python3 tests/kube/flux_sync.py --env dev --crds ../shared/crds
The test starts the controllers itself (`scripts/kube-stack start flux`) once the CRDs exist.

Steps (each printed with its time):
  crds          the platform's CRDs (--crds) and those of the Flux controllers as built
                (`scripts/kube-stack flux-crds`), Established
  controllers   source-controller and kustomize-controller ready
  create        a GitRepository and a Kustomization for rendered/<env>/: Ready at the pushed
                commit, every object of the tree in the cluster, labelled by Flux
  change        a model change (two bridge replicas) rendered by ehs and pushed: applied
  prune         a model change that drops the Gateway and the HTTPRoute (Ingress instead),
                pushed: both deleted, the Ingress created
  drift         the bridge StatefulSet edited by hand (kubectl-edit's field manager): reverted
                by Flux on its own interval, no commit, no trigger
  bad_commit    a commit with a custom resource the API server refuses: Kustomization
                Ready=False with the API server's own message, nothing of it applied
  recovered     the bad commit reverted: Ready=True again at the new commit
"""

import argparse
import copy
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
                  load_rendered, render_changed, show, wait_for)

GIT_PORT = int(os.environ.get("EHS_KUBE_GIT_PORT", "29418"))
FLUX_NAMESPACE = os.environ.get("EHS_KUBE_FLUX_NAMESPACE", "flux-system")
KUBE_STACK = os.path.join(ROOT, "scripts", "kube-stack")
NAME = "ehs"
MANAGER = "ehs-kube-test"
# Short intervals keep the test fast; they are what Flux polls with, nothing triggers it.
SOURCE_INTERVAL = "3s"
SYNC_INTERVAL = "5s"
TIMEOUT = 120


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


def flux_objects(url, env):
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": NAME, "namespace": FLUX_NAMESPACE},
        "spec": {"url": url, "ref": {"branch": "main"}, "interval": SOURCE_INTERVAL},
    }
    sync = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": f"{NAME}-{env}", "namespace": FLUX_NAMESPACE},
        "spec": {
            "interval": SYNC_INTERVAL,
            "path": f"./rendered/{env}",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": NAME},
            "timeout": "1m",
        },
    }
    return source, sync


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
            cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": FLUX_NAMESPACE}}, MANAGER)
            subprocess.run([KUBE_STACK, "start", "flux"], check=True)

        if not results.check("controllers", controllers):
            return results.finish()

        repo = Repo(work)
        GitHttpBackend.project_root = repo.served
        server = http.server.ThreadingHTTPServer(("127.0.0.1", GIT_PORT), GitHttpBackend)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        source, sync = flux_objects(f"http://127.0.0.1:{GIT_PORT}/{NAME}.git", args.env)
        state = {"head": repo.git("rev-parse", "HEAD")}

        def kustomization():
            return cluster.get(sync)

        def applied(sha):
            """The Kustomization is Ready with `sha` applied."""
            live = kustomization()
            ready = condition(live, "Ready") or {}
            revision = (live or {}).get("status", {}).get("lastAppliedRevision", "")
            return live if ready.get("status") == "True" and revision.endswith(sha) else None

        def objects_present(objects):
            missing = [show(ident(o)) for o in objects if cluster.get(o) is None]
            if missing:
                raise AssertionError(f"not in the cluster: {missing}")

        def create():
            cluster.apply(source, MANAGER)
            cluster.apply(sync, MANAGER)
            _, took = wait_for("Kustomization Ready at the first commit",
                               lambda: applied(state["head"]), TIMEOUT)
            objects = load_rendered(repo.path("rendered", args.env))
            objects_present(objects)
            unlabelled = [show(ident(o)) for o in objects
                          if "kustomize.toolkit.fluxcd.io/name" not in
                          (cluster.get(o)["metadata"].get("labels") or {})]
            if unlabelled:
                raise AssertionError(f"not applied by Flux: {unlabelled}")
            return f"{len(objects)} objects synced {took:.1f} s after the Kustomization"

        if not results.check("create", create):
            return results.finish()

        bridge = next(o for o in load_rendered(repo.path("rendered", args.env))
                      if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "ehs-bridge")
        replicas = bridge["spec"].get("replicas", 1) + 1

        def change():
            render_changed(repo.checkout, args.env,
                           lambda m: m.setdefault("bridge", {}).update(replicas=replicas))
            state["head"] = repo.commit(f"bridge: {replicas} replicas")
            _, took = wait_for("the pushed change applied", lambda: applied(state["head"]),
                               TIMEOUT)
            live = cluster.get(bridge)["spec"]["replicas"]
            if live != replicas:
                raise AssertionError(f"ehs-bridge has {live} replicas, the commit says {replicas}")
            return f"applied {took:.1f} s after the push"

        results.check("change", change)

        def prune():
            before = load_rendered(repo.path("rendered", args.env))
            render_changed(repo.checkout, args.env,
                           lambda m: m.setdefault("exposure", {}).update(mode="ingress"))
            after = load_rendered(repo.path("rendered", args.env))
            removed = [o for o in before if ident(o) not in {ident(a) for a in after}]
            if not removed:
                raise AssertionError("the model change removed nothing; the test needs another")
            state["head"] = repo.commit("exposure: Ingress instead of Gateway")
            _, took = wait_for("the pruning commit applied", lambda: applied(state["head"]),
                               TIMEOUT)
            left = [show(ident(o)) for o in removed if cluster.get(o) is not None]
            if left:
                raise AssertionError(f"not pruned: {left}")
            objects_present(after)
            return f"pruned {', '.join(show(ident(o)) for o in removed)} {took:.1f} s after the push"

        results.check("prune", prune)

        def drift():
            wanted = cluster.get(bridge)["spec"]["replicas"]
            cluster.patch(bridge, {"spec": {"replicas": wanted + 3}}, "kubectl-edit")
            if cluster.get(bridge)["spec"]["replicas"] != wanted + 3:
                raise AssertionError("the manual edit did not take")
            _, took = wait_for("the manual edit reverted",
                               lambda: cluster.get(bridge)["spec"]["replicas"] == wanted,
                               TIMEOUT)
            return f"reverted {took:.1f} s after the edit"

        results.check("drift", drift)

        def bad_commit():
            path = repo.path("rendered", args.env, "certificates",
                             "certificate-hivemq-mqtt-tls.yaml")
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
            state["bad"] = repo.commit("certificates: an algorithm cert-manager does not know")

            def reported():
                live = kustomization()
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
            return f"Ready=False {took:.1f} s after the push: {message}"

        results.check("bad_commit", bad_commit)

        def recovered():
            if "bad" not in state:
                raise AssertionError("no bad commit to revert (bad_commit failed early)")
            repo.git("revert", "--no-edit", "HEAD")
            repo.git("push", "-q", "origin", "main")
            state["head"] = repo.git("rev-parse", "HEAD")
            _, took = wait_for("Ready again after the revert", lambda: applied(state["head"]),
                               TIMEOUT)
            return f"Ready {took:.1f} s after the push"

        results.check("recovered", recovered)
        return results.finish()
    finally:
        if server is not None:
            server.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
