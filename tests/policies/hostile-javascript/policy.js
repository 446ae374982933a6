// Misbehaves on purpose: a push of the tag `loop` never ends, one of `bomb` allocates until
// the host stops it, any other push is allowed. Written against the contract directly, so
// that the test does not depend on the SDK.

export const policy = {
  metadata() {
    return {
      name: 'hostile-javascript',
      version: '0.1.0',
      description: 'Loops or eats memory on purpose, for the sandbox tests',
      settingsExample: '{}',
    };
  },
  configure(_settings) {},
  evaluate(request) {
    const operation = request.operation;
    if (operation.tag !== 'push') return;
    for (const change of operation.val.tags) {
      if (change.tag === 'loop') {
        let n = 0;
        for (;;) n += 1;
      }
      if (change.tag === 'bomb') {
        const hoard = [];
        for (;;) hoard.push(new Float64Array(1 << 21));
      }
    }
  },
};
