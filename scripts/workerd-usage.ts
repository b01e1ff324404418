// What the local worker's workerd processes (those in the wrangler process
// group) use, from Linux /proc: their peak resident memory (VmHWM) and their
// CPU time.
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

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU time (user + system) the workerd processes have used so far, in milliseconds. */
export function workerdCpuMs(groupLeader: number): number {
  let ms = 0;
  for (const pid of workerdPids(groupLeader)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ms += (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime
    } catch {
      // the process ended meanwhile
    }
  }
  return ms;
}
