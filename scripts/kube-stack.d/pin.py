#!/usr/bin/env python3
"""Writes the wrapper module that builds one upstream Go command from the module proxy.

`go install module@version` refuses modules whose go.mod has replace directives, and
kube-apiserver, etcd and the Flux controllers all have them. A wrapper module that requires the
upstream module works, provided it carries the upstream's replace directives itself, with
every local-path replacement (`=> ./staging/...`, `=> ../api`) turned into the published module
at its release version. This script derives those from the upstream's own go.mod, so a version
bump is a changed argument, not hand-edited replace lines.

Usage: pin.py DIR MODULE VERSION TOOL_PACKAGE [--local-version V] [--replace PATH=PATH@V]...
              [--note TEXT]
"""

import argparse
import json
import os
import subprocess
import sys


def go(*args, cwd=None):
    return subprocess.run(["go", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("module")
    parser.add_argument("version")
    parser.add_argument("tool")
    parser.add_argument("--local-version",
                        help="release of the modules the upstream takes from local paths "
                             "(default: VERSION)")
    parser.add_argument("--replace", action="append", default=[],
                        help="PATH=PATH@VERSION, applied after the upstream's own replacements")
    parser.add_argument("--note", help="a line for the go.mod header (what the pin follows)")
    args = parser.parse_args()
    local_version = args.local_version or args.version

    info = json.loads(go("mod", "download", "-json", f"{args.module}@{args.version}"))
    upstream = json.loads(go("mod", "edit", "-json", info["GoMod"]))

    os.makedirs(args.dir, exist_ok=True)
    for name in ("go.mod", "go.sum"):
        path = os.path.join(args.dir, name)
        if os.path.exists(path):
            os.remove(path)
    wrapper = os.path.basename(os.path.normpath(args.dir))
    with open(os.path.join(args.dir, "go.mod"), "w", encoding="utf-8") as out:
        out.write(f"// Written by scripts/kube-stack pin: builds {args.tool}\n"
                  f"// from {args.module}@{args.version} with the upstream's replace directives,\n"
                  f"// local paths turned into published releases ({local_version}).\n")
        if args.note:
            out.write(f"// {args.note}\n")
        out.write(f"module ehs.local/kube-stack/{wrapper}\n\ngo {upstream['Go']}\n")
        for debug in upstream.get("GoDebug") or []:
            out.write(f"\ngodebug {debug['Key']}={debug['Value']}\n")

    edits = []
    for replace in upstream.get("Replace") or []:
        old = replace["Old"]["Path"]
        new = replace["New"]
        if "Version" in new:
            target = f"{new['Path']}@{new['Version']}"
        else:
            # A path on the upstream's disk: the module of that name as published.
            target = f"{old}@{local_version}"
        edits.append(f"-replace={old}={target}")
    edits += [f"-replace={r}" for r in args.replace]
    edits.append(f"-require={args.module}@{args.version}")
    go("mod", "edit", *edits, cwd=args.dir)
    # At the pinned version: a bare package path would mean its newest release.
    subprocess.run(["go", "get", "-tool", f"{args.tool}@{args.version}"], cwd=args.dir,
                   check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
