import { ByteReader } from '../../common/reader.js';
import { toHex } from '../../common/hex.js';
import { EV } from './types.js';

/** EFI_GUID in its text form: Data1..3 are little-endian, Data4 is bytes. */
export function guidToString(b: Uint8Array): string {
  const h = (x: Uint8Array) => toHex(x);
  const rev = (x: Uint8Array) => h(Uint8Array.from(x).reverse());
  return `${rev(b.subarray(0, 4))}-${rev(b.subarray(4, 6))}-${rev(b.subarray(6, 8))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`;
}

export type DecodedEvent =
  | { kind: 'efi_variable'; variableName: string; unicodeName: string; variableDataLength: number; variableData: string }
  | { kind: 'efi_image_load'; imageLocationInMemory: string; imageLengthInMemory: string; imageLinkTimeAddress: string; devicePath: string }
  | { kind: 'separator'; value: string; error: boolean }
  | { kind: 'text'; text: string }
  | { kind: 'spec_id'; text: string }
  | { kind: 'startup_locality'; locality: number };

function printable(data: Uint8Array): string | undefined {
  let s = Buffer.from(data).toString('latin1');
  s = s.replace(/\0+$/, '');
  return /^[\x20-\x7e\t\r\n]*$/.test(s) ? s : undefined;
}

/**
 * Decodes the event data where the type is known. The data is untrusted (only digests are bound by the replay);
 * decoding is for display and never feeds a trust decision. Undecodable data returns undefined, never throws.
 */
export function decodeEvent(type: number, data: Uint8Array): DecodedEvent | undefined {
  try {
    switch (type) {
      case EV.EFI_VARIABLE_DRIVER_CONFIG:
      case EV.EFI_VARIABLE_BOOT:
      case EV.EFI_VARIABLE_BOOT2:
      case EV.EFI_VARIABLE_AUTHORITY: {
        const r = new ByteReader(data, 'UEFI_VARIABLE_DATA');
        const guid = r.bytes(16, 'VariableName');
        const nameLen = r.u64le('UnicodeNameLength');
        const dataLen = r.u64le('VariableDataLength');
        if (nameLen > 4096n || dataLen > BigInt(data.length)) return undefined;
        const name = Buffer.from(r.bytes(Number(nameLen) * 2, 'UnicodeName')).toString('utf16le');
        const vdata = r.bytes(Number(dataLen), 'VariableData');
        return { kind: 'efi_variable', variableName: guidToString(guid), unicodeName: name, variableDataLength: Number(dataLen), variableData: toHex(vdata) };
      }
      case EV.EFI_BOOT_SERVICES_APPLICATION:
      case EV.EFI_BOOT_SERVICES_DRIVER:
      case EV.EFI_RUNTIME_SERVICES_DRIVER: {
        const r = new ByteReader(data, 'EFI_IMAGE_LOAD_EVENT');
        const loc = r.u64le('ImageLocationInMemory');
        const len = r.u64le('ImageLengthInMemory');
        const link = r.u64le('ImageLinkTimeAddress');
        const dpLen = r.u64le('LengthOfDevicePath');
        if (dpLen > BigInt(r.remaining)) return undefined;
        const dp = r.bytes(Number(dpLen), 'DevicePath');
        return {
          kind: 'efi_image_load',
          imageLocationInMemory: `0x${loc.toString(16)}`,
          imageLengthInMemory: `0x${len.toString(16)}`,
          imageLinkTimeAddress: `0x${link.toString(16)}`,
          devicePath: toHex(dp),
        };
      }
      case EV.SEPARATOR: {
        const v = toHex(data);
        return { kind: 'separator', value: v, error: v === 'ffffffff' };
      }
      case EV.NO_ACTION: {
        const s = Buffer.from(data.subarray(0, 16)).toString('latin1');
        if (s === 'StartupLocality\0' && data.length === 17) return { kind: 'startup_locality', locality: data[16] };
        if (s.startsWith('Spec ID Event')) return { kind: 'spec_id', text: s.replace(/\0+$/, '') };
        const t = printable(data);
        return t !== undefined ? { kind: 'text', text: t } : undefined;
      }
      default: {
        // EV_IPL (grub/systemd command lines), EV_EFI_ACTION, EV_ACTION, EV_S_CRTM_VERSION (UCS-2) ... are text.
        const t = printable(data);
        if (t !== undefined && t.length > 0) return { kind: 'text', text: t };
        if (data.length >= 2) {
          // UCS-2 (systemd-boot's EV_IPL command lines, S-CRTM versions); an odd trailing byte is padding.
          const u = Buffer.from(data.subarray(0, data.length & ~1)).toString('utf16le').replace(/\0+$/, '');
          if (u.length > 0 && /^[\x20-\x7e]*$/.test(u)) return { kind: 'text', text: u };
        }
        return undefined;
      }
    }
  } catch {
    return undefined;
  }
}
