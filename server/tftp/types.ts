/** What the TFTP server reports about each request, logged and passed to `onTransfer`. */

export type TransferOutcome =
  | 'ok'
  /** UEFI size probe: OACK answered with ERROR 8, a full RRQ follows. Normal. */
  | 'aborted-probe'
  | 'not-found'
  /** The resolver refused the name (traversal, symlink out of root, directory...). */
  | 'refused'
  /** WRQ, or a mode other than octet. */
  | 'rejected'
  | 'timeout'
  /** The client sent an ERROR mid-transfer. */
  | 'client-error'
  /** ICMP port unreachable: the client went away. */
  | 'peer-unreachable'
  /** Local failure (read error, resolver threw). */
  | 'error'
  /** The server was closed during the transfer. */
  | 'closed';

export interface TransferEvent {
  /** `address:port` of the client (its TID). */
  peer: string;
  /** From ServedFile.mac when the boot decision knew the machine. */
  mac?: string;
  file: string;
  /** Bytes acknowledged by the client (the whole file when outcome is ok). */
  bytes: number;
  blksize: number;
  windowsize: number;
  /** Size announced in the OACK, null when the client did not ask. */
  tsize: number | null;
  ms: number;
  outcome: TransferOutcome;
  /** Why, for anything but ok. */
  reason?: string;
  /** DATA packets sent again after a timeout or a gap. */
  retransmits?: number;
}
