#!/usr/bin/env python3
"""Fails when a crate's source files import each other in a cycle.

Data flows one way in Remit: a lower module never imports a higher one. This reads every `.rs`
file under each crate's `src/`, takes the files each one refers to through `crate::`, `super::`
and `self::` paths (and through the names a `use` brought in), resolves re-exports of the crate
root (`pub use error::{Error, Result}` makes `crate::Error` a reference to error.rs) and prints
every cycle of files. A module declaring its children (`mod x;`) is not an import.

usage: scripts/import-cycles.py CRATE_SRC_DIR...
"""
import os
import re
import sys


def module_files(src):
    """Maps each module path (tuple of names; () is the crate root) to its file."""
    files = {}
    for dirpath, _, names in os.walk(src):
        for name in names:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), src)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            if parts and parts[0] in ("bin",):
                continue
            files[tuple(parts)] = os.path.join(src, rel)
    return files


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def expand_use(tree):
    """Expands a use tree (`crate::{a, b::{c, d as e}}`) into its paths."""
    tree = re.sub(r"\s+", "", tree)

    def split_top(s):
        depth, start, out = 0, 0, []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                out.append(s[start:i])
                start = i + 1
        out.append(s[start:])
        return [p for p in out if p]

    def walk(prefix, s):
        paths = []
        brace = s.find("{")
        if brace == -1:
            name, alias = (s.split("as", 1) + [None])[:2] if re.search(r"\bas\b", s) else (s, None)
            path = prefix + [p for p in name.split("::") if p]
            paths.append((path, alias))
            return paths
        head = [p for p in s[:brace].split("::") if p]
        for part in split_top(s[brace + 1 : s.rfind("}")]):
            paths.extend(walk(prefix + head, part))
        return paths

    return walk([], tree)


def resolve(files, reexports, here, path):
    """The file a path (list of names) of module `here` refers to, or None outside the crate."""
    if not path:
        return None
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] == "super":
        base, rest = here[:-1], path[1:]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif path[0] == "self":
        base, rest = here, path[1:]
    else:
        return None
    module = base
    for name in rest:
        if module + (name,) in files:
            module = module + (name,)
        else:
            if module == () and name in reexports:
                return reexports[name]
            break
    return files.get(module)


def graph(src):
    files = module_files(src)
    texts = {m: strip_comments(open(f).read()) for m, f in files.items()}
    # The crate root's re-exports: `pub use error::{Error, Result};` and the like.
    reexports = {}
    root = texts.get((), "")
    for tree in re.findall(r"\bpub\s+use\s+([^;]+);", root):
        for path, alias in expand_use(tree):
            target = resolve(files, {}, (), ["crate"] + path[:-1] + [path[-1]]) or resolve(files, {}, (), ["crate"] + path[:-1])
            if target and target != files[()]:
                reexports[alias or path[-1]] = target
    edges = {f: set() for f in files.values()}
    for module, text in texts.items():
        here = files[module]
        local = {}
        for tree in re.findall(r"\buse\s+([^;]+);", text):
            for path, alias in expand_use(tree):
                if path and path[0] in ("crate", "super", "self"):
                    target = resolve(files, reexports, module, path)
                    name = alias or path[-1]
                    if name == "self":
                        name = path[-2]
                    local[name] = path if name != "*" else None
                    if target:
                        edges[here].add(target)
        # Paths written in the code: crate::a::b, super::x, and names a `use` brought in.
        for match in re.finditer(r"\b(crate|super|self)((?:::\w+)+)", text):
            target = resolve(files, reexports, module, [match.group(1)] + match.group(2).split("::")[1:])
            if target:
                edges[here].add(target)
        for name, path in local.items():
            if path is None:
                continue
            for match in re.finditer(r"(?<![\w:])" + re.escape(name) + r"((?:::\w+)+)", text):
                target = resolve(files, reexports, module, path + match.group(1).split("::")[1:])
                if target:
                    edges[here].add(target)
        edges[here].discard(here)
    return edges


def cycles(edges):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def main():
    failed = False
    for src in sys.argv[1:]:
        edges = graph(src)
        for component in cycles(edges):
            failed = True
            print(f"{src}: {len(component)} files import each other in a cycle:")
            members = set(component)
            for f in component:
                inside = sorted(t for t in edges[f] if t in members)
                print(f"  {f} -> {', '.join(os.path.relpath(t, src) for t in inside)}")
    if failed:
        sys.exit(1)
    print(f"no import cycle in {', '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
