// The work itself: the midpoint rule for f(x) = 4 / (1 + x²) on [a, b].
// Over [0, 1] the integral is π.
export function integrate(a: number, b: number, steps = 10_000): number {
  const h = (b - a) / steps;
  let sum = 0;
  for (let i = 0; i < steps; i++) {
    const x = a + (i + 0.5) * h;
    sum += 4 / (1 + x * x);
  }
  return sum * h;
}

export interface Task {
  id: number;
  a: number;
  b: number;
}

export interface Result {
  id: number;
  value: number;
  by: string;
}
