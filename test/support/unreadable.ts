// Values whose fields throw as they are read, as a thrown value of someone else's may: what an error
// handler or a log must survive and still tell.

/** `target` with an enumerable `field` whose getter throws. */
export function throwingGetter<T extends object>(target: T, field: string): T {
  return Object.defineProperty(target, field, {
    enumerable: true,
    get() {
      throw new Error(`the ${field} getter threw`);
    },
  });
}

/** A Proxy whose every read throws, `instanceof` too (it asks for the prototype). */
export function throwingProxy(): object {
  return new Proxy(
    {},
    {
      get() {
        throw new Error('the get trap threw');
      },
      getPrototypeOf() {
        throw new Error('the getPrototypeOf trap threw');
      },
    },
  );
}
