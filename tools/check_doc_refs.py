#!/usr/bin/env python3
"""Checks that the guide's references into the source tree are valid.

Run by ctest (tests/CMakeLists.txt, test `doc_refs`) as
    python3 tools/check_doc_refs.py <repository root>
over README.md and docs/*.md. It fails, naming the file and line of the guide, when

  * prose cites a line number: "line 102", "lines 130–131" or `kernels/fsq.cuh:57`
    (line numbers go stale with every edit; the guide names functions, kernels and
    tests instead);
  * a link carries a line anchor (`../kernels/fsq.cuh#L116`);
  * a repository path in backticks (`kernels/vae.cuh`, `src/ops/`) or a Markdown link or
    image target does not exist; a path written with a placeholder (`kernels/<concept>.cuh`)
    or a glob is not checked, and `bench/vae_bench` may name the binary built from
    bench/vae_bench.cpp;
  * a recorded tool transcript (a fenced code block) shows `file:N` for a file of the
    repository, and line N does not exist, or the transcript prints line N's source
    ("N<tab>text", as gdb does) and the file's line N says something else.
"""
import pathlib
import re
import sys

TOP_DIRS = ("bench", "cmake", "docs", "include", "kernels", "src", "tests", "tools")
SOURCE_EXT = r"(?:cuh|cu|cpp|hpp|h|py|cmake|txt|md|sh)"
LINE_WORD = re.compile(r"\blines? \d+")
FILE_LINE = re.compile(r"([\w./-]+\." + SOURCE_EXT + r"):(\d+)\b")
BACKTICK = re.compile(r"`([^`\s]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
GDB_SOURCE = re.compile(r"^(\d+)\t(.*)$")
# Folders a tool creates when it runs (tools/gpu-check writes bench/results/<date>-<gpu>/).
WRITTEN_BY_TOOLS = ("bench/results",)


def repo_relative(path: str):
    """The repository-relative form of a path that starts at a top-level folder, else None."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part in TOP_DIRS and i < len(parts) - 1:
            return "/".join(parts[i:])
    return None


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    guide = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    errors = []

    def lines_of(rel):
        return (root / rel).read_text(encoding="utf-8", errors="replace").splitlines()

    for doc in guide:
        text = doc.read_text(encoding="utf-8").splitlines()
        name = doc.relative_to(root)
        fenced = False
        last_ref = None  # (file, line) of the transcript's latest file:N
        for number, line in enumerate(text, 1):
            where = f"{name}:{number}"
            if line.lstrip().startswith("```"):
                fenced = not fenced
                last_ref = None
                continue
            if fenced:
                for match in FILE_LINE.finditer(line):
                    rel = repo_relative(match.group(1)) or match.group(1)
                    if not (root / rel).is_file():
                        rel = next((str(p.relative_to(root)) for d in TOP_DIRS
                                    for p in (root / d).rglob(pathlib.Path(rel).name)), None)
                    if rel is None:
                        continue  # not a file of this repository (a system library, …)
                    n = int(match.group(2))
                    if n > len(lines_of(rel)):
                        errors.append(f"{where}: {match.group(0)}: {rel} has only "
                                      f"{len(lines_of(rel))} lines")
                    last_ref = (rel, n)
                shown = GDB_SOURCE.match(line)
                if shown and last_ref:
                    rel, n = last_ref
                    source = lines_of(rel)
                    k = int(shown.group(1))
                    if abs(k - n) <= 10 and (k > len(source) or
                                            source[k - 1].strip() != shown.group(2).strip()):
                        errors.append(f"{where}: the transcript shows line {k} of {rel} as "
                                      f"{shown.group(2).strip()!r}, the file has "
                                      f"{source[k - 1].strip() if k <= len(source) else 'no such line'!r}")
                    last_ref = (rel, k)
                continue
            prose = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "_"), line)
            for match in LINE_WORD.finditer(prose):
                errors.append(f"{where}: '{match.group(0)}': name the function instead")
            for match in FILE_LINE.finditer(line):
                errors.append(f"{where}: '{match.group(0)}': name the function instead")
            targets = [m.group(1) for m in BACKTICK.finditer(line)]
            targets = [t for t in targets if "/" in t and t.split("/")[0] in TOP_DIRS]
            for target in targets:
                if re.search(r"[<>*{}]", target) or target.rstrip("/") in WRITTEN_BY_TOOLS:
                    continue
                path = root / target.rstrip("/").split(":")[0]
                if not (path.exists() or any(path.with_name(path.name + ext).exists()
                                             for ext in (".cpp", ".cu", ".cuh", ".py"))):
                    errors.append(f"{where}: `{target}` does not exist")
            for match in LINK.finditer(line):
                if re.search(r"#L\d+", match.group(1)):
                    errors.append(f"{where}: {match.group(1)}: a line anchor; link the file "
                                  f"and name the function")
                target = match.group(1).split("#")[0]
                if not target or re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
                    continue
                if not (doc.parent / target).exists():
                    errors.append(f"{where}: link target {target} does not exist")

    for e in errors:
        print(e)
    print(f"check_doc_refs: {len(guide)} files, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
