// Peak resident memory of the local worker: the VmHWM of the workerd
// processes in the wrangler process group (Linux /proc).
import { readFileSync, readdirSync, writeFileSync } from "node:fs";

function* workerdPids(groupLeader: number): Generator<string> {
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (pgid === groupLeader && stat.includes("(workerd)")) yield pid;
    } catch {
      // the process ended meanwhile
    }
  }
}

/** Resets the peak (VmHWM) of those processes to their current RSS, so that a later read covers only what follows. */
export function resetWorkerdPeak(groupLeader: number): void {
  for (const pid of workerdPids(groupLeader)) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
    } catch {
      // the process ended meanwhile
    }
  }
}

export function workerdPeakMiB(groupLeader: number): number {
  let peak = 0;
  for (const pid of workerdPids(groupLeader)) {
    try {
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
    } catch {
      // the process ended meanwhile
    }
  }
  return peak;
}
