import { describe, expect, it } from "vitest";
import { diffLines } from "./diff";

describe("diffLines", () => {
  it("tells file headers, hunks, additions, deletions and context apart", () => {
    const diff = "--- a@1\n+++ a@2\n@@ -1,2 +1,2 @@\n id: a\n-x: 1\n+x: 2\n";
    expect(diffLines(diff).map((l) => l.kind)).toEqual(["file", "file", "hunk", "same", "del", "add"]);
  });
});
