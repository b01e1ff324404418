// A minimal typed event emitter (no Node imports: the library runs in browsers too).
export class Emitter<Events extends Record<string, unknown[]>> {
  #listeners = new Map<keyof Events, Set<(...args: any[]) => void>>();

  on<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  off<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): void {
    this.#listeners.get(event)?.delete(listener);
  }

  emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    this.emitEach(event, () => args);
  }

  /** Like emit, with the arguments made for each listener (a fresh copy each). */
  emitEach<E extends keyof Events>(event: E, make: () => Events[E]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...make());
      } catch (error) {
        // A throwing listener must not break the library's state machine.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
