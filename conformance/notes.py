"""notes.toml: why a case does not pass in a column of RESULTS.md, and the rule that keeps the
notes true (a note on a cell that passes fails the run)."""
import fnmatch
import os
import tomllib

from .core import HERE

NOTES_FILE = os.path.join(HERE, "notes.toml")
NO_NOTE = "(no note)"


class NotesError(Exception):
    pass


def _is_pattern(selector):
    return any(ch in selector for ch in "*?[|")


def selector_matches(selector, column):
    """A selector is an exact column label or fnmatch patterns separated by "|"."""
    if not _is_pattern(selector):
        return selector == column
    return any(fnmatch.fnmatchcase(column, p.strip()) for p in selector.split("|"))


class Notes:
    def __init__(self, table, source="notes.toml"):
        """table: {case: {selector: note}}; a note is a string, or {note = "why", racy = true} for a
        failure that depends on timing (verified by repeated runs), which a pass does not make stale."""
        self.source = source
        self.table = {}
        self.racy = set()
        for case_name, notes in table.items():
            if not isinstance(notes, dict):
                raise NotesError(f"{source} [{case_name}]: each entry must be \"COLUMN\" = \"why\"")
            self.table[case_name] = {}
            for selector, v in notes.items():
                if isinstance(v, dict) and set(v) <= {"note", "racy"} and isinstance(v.get("racy", False), bool):
                    if v.get("racy"):
                        self.racy.add((case_name, selector))
                    v = v.get("note")
                if not isinstance(v, str) or not v.strip():
                    raise NotesError(f"{source} [{case_name}] {selector!r}: must be \"why\" or "
                                     f"{{ note = \"why\", racy = true }}")
                self.table[case_name][selector] = v

    @classmethod
    def load(cls, path=NOTES_FILE):
        try:
            with open(path, "rb") as f:
                table = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise NotesError(f"{path}: {e}")
        return cls(table, os.path.basename(path))

    def lookup(self, column, case_name):
        """-> (selector, note) for one cell, or None. An exact label wins, then a pattern, then "*";
        two patterns matching one cell are an error (the file must say which note is meant)."""
        notes = self.table.get(case_name, {})
        if column in notes:
            return column, notes[column]
        patterns = [s for s in notes if s != "*" and _is_pattern(s) and selector_matches(s, column)]
        if len(patterns) > 1:
            raise NotesError(f"{self.source} [{case_name}]: {' and '.join(map(repr, patterns))} both match column "
                             f"{column!r}; give that column its own entry")
        if patterns:
            return patterns[0], notes[patterns[0]]
        if "*" in notes:
            return "*", notes["*"]
        return None

    def note(self, column, case_name):
        found = self.lookup(column, case_name)
        return found[1] if found else NO_NOTE

    def problems(self, columns, case_names):
        """columns: {label: {case: (status, reason)}}, results measured for those columns.
        -> messages for notes that are not true: on a case that does not exist, or on a cell that
        passes (the runtime has caught up: remove the note, or narrow its selector) unless racy."""
        out = [f"{self.source} [{n}]: no case is named {n!r}" for n in self.table if n not in case_names]
        for label, res in columns.items():
            for n in case_names:
                st = res.get(n, ("-", ""))[0]
                found = self.lookup(label, n) if st == "pass" else None
                if found and (n, found[0]) not in self.racy:
                    out.append(f"{self.source} [{n}] {found[0]!r}: {n} passes in column {label!r}, "
                               f"so this note is stale; remove it (or narrow its column selector)")
        return out
