/** JSON schemas shared by the API routes. Field rules beyond shape (RFC 1123, subnet, pool) are the inventory's. */

const nullableString = (maxLength: number) => ({ type: ['string', 'null'], maxLength });
const bootMode = { type: ['string', 'null'], enum: ['root', 'maintenance', 'local', null] };
const loader = { type: ['string', 'null'], enum: ['pxelinux', 'lpxelinux', 'ipxe', null] };

export const MAC_PARAMS = { type: 'object', required: ['mac'], properties: { mac: { type: 'string', maxLength: 32 } } };
export const NAME_PARAMS = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 64 } } };

export const MACHINE_FIELDS = {
  hostname: nullableString(253),
  ipv4: nullableString(15),
  group: nullableString(63),
  root: nullableString(63),
  bootMode,
  kernelArgs: nullableString(2048),
};

export const MACHINE_CREATE = {
  type: 'object', additionalProperties: false, required: ['mac'],
  properties: { mac: { type: 'string', maxLength: 32 }, ...MACHINE_FIELDS },
};

export const MACHINE_UPDATE = { type: 'object', additionalProperties: false, minProperties: 1, properties: MACHINE_FIELDS };

export const MACHINE = {
  type: 'object',
  properties: {
    mac: { type: 'string' }, hostname: nullableString(253), ipv4: nullableString(15), group: nullableString(63), root: nullableString(63),
    bootMode, kernelArgs: nullableString(2048), createdAt: { type: 'integer' }, updatedAt: { type: 'integer' },
  },
};

const bootFiles = {
  type: ['object', 'null'], additionalProperties: false,
  properties: Object.fromEntries(['bios', 'efi32', 'efi64', 'efi64-http', 'arm64'].map((a) => [a, { type: 'string', maxLength: 255 }])),
};

export const GROUP_FIELDS = { root: nullableString(63), bootMode, loader, kernelArgs: nullableString(2048), bootFiles };
export const GROUP_CREATE = {
  type: 'object', additionalProperties: false, required: ['name'],
  properties: { name: { type: 'string', maxLength: 63 }, ...GROUP_FIELDS },
};
export const GROUP_UPDATE = { type: 'object', additionalProperties: false, minProperties: 1, properties: GROUP_FIELDS };

export const ROOT_PUT = {
  type: 'object', additionalProperties: false, required: ['arch', 'kernel', 'initrd', 'nfsPath'],
  properties: {
    arch: { type: 'string', enum: ['amd64', 'i386', 'arm64'] },
    kernel: { type: 'string', maxLength: 255 }, initrd: { type: 'string', maxLength: 255 },
    nfsPath: { type: 'string', maxLength: 1024 }, kernelArgs: { type: 'string', maxLength: 2048 },
  },
};

export const PAGE_QUERY = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  offset: { type: 'integer', minimum: 0, default: 0 },
};
