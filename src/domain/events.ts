import type { DomainEvent, EventBus } from './ports.js';

/** The in-process event bus of a single node; a cluster adds a NATS bridge beside it. */
export class InProcessEventBus implements EventBus {
  private readonly listeners = new Set<(event: DomainEvent) => void>();

  constructor(private readonly onListenerError: (err: unknown) => void = () => {}) {}

  publish(event: DomainEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  subscribe(listener: (event: DomainEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export const systemClock = { now: () => new Date() };
