import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration and e2e tests create network namespaces and run real clients and QEMU: one file at
    // a time keeps a 2-core machine from starving them (timeouts, not speed, are the failure mode).
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
