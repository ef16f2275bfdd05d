/**
 * Every refusal of the inventory names the field and says why, and for a
 * conflict names the machine that holds the value, so the API can answer
 * `409 {field: "ipv4", message: "10.0.0.5 is held by node07 (aa:bb:..)"}`.
 */
export type InventoryErrorCode = 'invalid' | 'conflict' | 'not_found' | 'unknown_reference' | 'in_use';

export class InventoryError extends Error {
  constructor(
    public readonly code: InventoryErrorCode,
    public readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'InventoryError';
  }
}
