"""What tests/kube needs of a Kubernetes API server, over its REST API with the standard library:
discovery, server-side apply, get, list, delete, waiting for conditions; reading rendered/<env>/
the way Argo CD and Flux read it (through its kustomization.yaml); rendering a changed model
into a scratch copy of the repository; and the cargo-style result lines scripts/test counts.

The cluster is the one `scripts/kube-stack start` runs: eval "$(scripts/kube-stack env)" first.
"""

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRD_KIND = ("apiextensions.k8s.io", "CustomResourceDefinition")
NAMESPACE_KIND = ("", "Namespace")


class ApiError(Exception):
    def __init__(self, method, path, status, body):
        self.status = status
        self.body = body
        self.message = body.get("message", "") if isinstance(body, dict) else str(body)
        super().__init__(f"{method} {path}: HTTP {status}: {self.message}")


def group_of(api_version):
    return api_version.split("/")[0] if "/" in api_version else ""


def ident(obj):
    """An object's identity the way the API server and the GitOps tools pair objects: group,
    kind, namespace, name (not the version, not the file it came from)."""
    meta = obj.get("metadata", {})
    return (group_of(obj["apiVersion"]), obj["kind"], meta.get("namespace", ""), meta["name"])


def show(key):
    group, kind, namespace, name = key
    kind = f"{kind}.{group}" if group else kind
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


class Cluster:
    def __init__(self, server, ca_file, token):
        self.server = server.rstrip("/")
        self.context = ssl.create_default_context(cafile=ca_file)
        self.token = token
        self.resources = {}

    @classmethod
    def from_env(cls):
        missing = [n for n in ("EHS_KUBE_SERVER", "EHS_KUBE_CA", "EHS_KUBE_TOKEN_FILE")
                   if not os.environ.get(n)]
        if missing:
            sys.exit(f"{', '.join(missing)} not set: eval \"$(scripts/kube-stack env)\" first")
        with open(os.environ["EHS_KUBE_TOKEN_FILE"], encoding="utf-8") as f:
            token = f.read().strip()
        return cls(os.environ["EHS_KUBE_SERVER"], os.environ["EHS_KUBE_CA"], token)

    def request(self, method, path, body=None, content_type="application/json", params=None):
        url = self.server + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=60) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ApiError(method, path, err.code, parsed) from None
        return json.loads(raw) if raw else None

    # Discovery: (group, kind, apiVersion) -> (path, plural, namespaced), refreshed on a miss
    # (a CRD just installed).
    def discover(self):
        resources = {}
        paths = ["/api/v1"]
        for group in self.request("GET", "/apis")["groups"]:
            paths += [f"/apis/{v['groupVersion']}" for v in group["versions"]]
        for path in paths:
            try:
                listing = self.request("GET", path)
            except ApiError as err:
                if err.status == 404:  # a CRD version not served yet
                    continue
                raise
            group = group_of(listing["groupVersion"])
            for res in listing["resources"]:
                if "/" in res["name"]:
                    continue
                key = (group, res["kind"], listing["groupVersion"])
                resources[key] = (path, res["name"], res["namespaced"])
        self.resources = resources

    def resource(self, api_version, kind):
        key = (group_of(api_version), kind, api_version)
        if key not in self.resources:
            self.discover()
        if key not in self.resources:
            raise LookupError(f"the API server does not serve {kind} in {api_version}")
        return self.resources[key]

    def path(self, api_version, kind, namespace="", name=None):
        base, plural, namespaced = self.resource(api_version, kind)
        path = base
        if namespaced and namespace:
            path += f"/namespaces/{namespace}"
        path += f"/{plural}"
        if name:
            path += f"/{name}"
        return path

    def object_path(self, obj):
        meta = obj["metadata"]
        return self.path(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])

    def apply(self, obj, manager, dry_run=False):
        """Server-side apply, forced (as Argo CD and Flux apply), with strict field validation:
        an unknown or duplicated field is an error, not a silently dropped value."""
        params = {"fieldManager": manager, "force": "true", "fieldValidation": "Strict"}
        if dry_run:
            params["dryRun"] = "All"
        return self.request("PATCH", self.object_path(obj), obj,
                            "application/apply-patch+yaml", params)

    def get(self, obj):
        try:
            return self.request("GET", self.object_path(obj))
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def list(self, api_version, kind, namespace=""):
        return self.request("GET", self.path(api_version, kind, namespace))["items"]

    def delete(self, obj):
        try:
            self.request("DELETE", self.object_path(obj), {"propagationPolicy": "Background"})
        except ApiError as err:
            if err.status != 404:
                raise

    def patch(self, obj, patch, manager):
        return self.request("PATCH", self.object_path(obj), patch,
                            "application/merge-patch+json", {"fieldManager": manager})


def condition(obj, kind):
    for cond in (obj or {}).get("status", {}).get("conditions", []) or []:
        if cond.get("type") == kind:
            return cond
    return None


def wait_for(what, check, timeout, interval=0.25):
    """Polls `check` until it returns something truthy; returns it and the seconds it took."""
    start = time.monotonic()
    last = None
    while True:
        try:
            result = check()
        except ApiError as err:
            result, last = None, err
        if result:
            return result, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: not within {timeout} s" + (f" ({last})" if last else ""))
        time.sleep(interval)


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def load_rendered(env_dir, with_paths=False):
    """The objects of rendered/<env>/, read as Argo CD and Flux read the directory: through its
    kustomization.yaml (a file it does not list is not applied). With `with_paths`, pairs of
    (object, its file relative to env_dir)."""
    kustomization = load_yaml_docs(os.path.join(env_dir, "kustomization.yaml"))[0]
    objects = []
    for resource in kustomization.get("resources", []):
        path = os.path.join(env_dir, resource)
        if os.path.isdir(path):
            inner = load_rendered(path, with_paths)
            objects += [(o, os.path.join(resource, p)) for o, p in inner] if with_paths else inner
        else:
            objects += [(o, resource) if with_paths else o for o in load_yaml_docs(path)]
    return objects


def load_gitops(env_dir):
    """The Argo CD and Flux objects of rendered/<env>/gitops/, every file in name order: the
    environment's kustomization.yaml leaves them out (the bootstrap applies them)."""
    gitops = os.path.join(env_dir, "gitops")
    objects = []
    for name in sorted(os.listdir(gitops)) if os.path.isdir(gitops) else []:
        if name.endswith(".yaml"):
            objects += load_yaml_docs(os.path.join(gitops, name))
    return objects


def crd_objects(crds_dir):
    objects = []
    for name in sorted(os.listdir(crds_dir)):
        if name.endswith((".yaml", ".yml")):
            objects += [d for d in load_yaml_docs(os.path.join(crds_dir, name))
                        if d.get("kind") == "CustomResourceDefinition"]
    return objects


def wait_established(cluster, crds, timeout=60):
    def all_established():
        return all((condition(cluster.get(crd), "Established") or {}).get("status") == "True"
                   for crd in crds)

    _, took = wait_for("CRDs Established", all_established, timeout)
    cluster.discover()
    return took


def install_crds(cluster, crds_dir, manager="ehs-kube-test-crds"):
    crds = crd_objects(crds_dir)
    for crd in crds:
        cluster.apply(crd, manager)
    wait_established(cluster, crds)
    return crds


def apply_all(cluster, objects, manager):
    """Applies Namespaces and CRDs first and waits until the CRDs are Established (objects in
    a Namespace or of a CRD that does not exist yet are refused), then everything else.
    Returns {ident: applied object} and [(ident, error message)] for refused objects."""
    first = [o for o in objects if (group_of(o["apiVersion"]), o["kind"]) in (NAMESPACE_KIND, CRD_KIND)]
    rest = [o for o in objects if o not in first]
    applied, refused = {}, []
    for batch in (first, rest):
        for obj in batch:
            try:
                applied[ident(obj)] = cluster.apply(obj, manager)
            except (ApiError, LookupError) as err:
                refused.append((ident(obj), str(err)))
        crds = [o for o in batch if (group_of(o["apiVersion"]), o["kind"]) == CRD_KIND]
        if crds:
            wait_established(cluster, crds)
    return applied, refused


def render_changed(work_root, env, edit):
    """Renders `env` after `edit(environment dict)` into work_root (a copy of environments/,
    components/ and rendered/), with this repository's ehs. Returns the rendered directory."""
    path = os.path.join(work_root, "environments", f"{env}.yaml")
    with open(path, encoding="utf-8") as f:
        model = yaml.safe_load(f)
    edit(model)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(model, f, sort_keys=False)
    subprocess.run([ehs_binary(), "render", "--root", work_root, "--env", env], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(work_root, "rendered", env)


def copy_model(dest):
    """A scratch copy of what `ehs render --root` reads and writes."""
    for part in ("environments", "components", "rendered"):
        shutil.copytree(os.path.join(ROOT, part), os.path.join(dest, part))


def ehs_binary():
    path = os.environ.get("EHS_BIN") or os.path.join(ROOT, "target", "debug", "ehs")
    if not os.access(path, os.X_OK):
        sys.exit(f"{path} not found: cargo build -p ehs-compiler first (or set EHS_BIN)")
    return path


class Results:
    """Named checks with their timings, printed as they finish and summed up in the
    cargo-style line scripts/test and .ci/run count."""

    def __init__(self, suite):
        self.suite = suite
        self.passed = 0
        self.failed = []

    def check(self, name, func):
        start = time.monotonic()
        try:
            detail = func()
        except Exception as err:  # noqa: BLE001 - every failure is reported, then the rest run
            took = time.monotonic() - start
            self.failed.append(name)
            print(f"test {self.suite}::{name} ... FAILED ({took:.1f} s)\n    {err}", flush=True)
            return False
        took = time.monotonic() - start
        self.passed += 1
        suffix = f": {detail}" if detail else ""
        print(f"test {self.suite}::{name} ... ok ({took:.1f} s){suffix}", flush=True)
        return True

    def finish(self):
        status = "ok" if not self.failed else "FAILED"
        print(f"test result: {status}. {self.passed} passed; {len(self.failed)} failed; "
              f"0 ignored ({self.suite})", flush=True)
        return 0 if not self.failed else 1
