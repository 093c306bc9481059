import type { Command } from 'commander';

/**
 * The flags every image-verifying command shares (image verify, admit, webhook) and what they build: an image
 * source (registries over HTTPS, or only local OCI layouts: offline) and an optional Sigstore trusted root.
 */
export interface ImageSourceFlags {
  ociLayout?: string[];
  trustedRoot?: string;
  insecureRegistry?: string[];
  registryCa?: string;
  registryTimeoutMs?: string;
}

export function addImageSourceOptions(cmd: Command): Command {
  return cmd
    .option('--oci-layout <repo=dir...>', 'offline: serve REPOSITORY (registry/path) from a local OCI image layout DIR; with this flag no registry is contacted')
    .option('--trusted-root <file>', 'Sigstore trusted root JSON (Fulcio CAs, Rekor and CT log keys) for keyless signers')
    .option('--insecure-registry <host...>', 'registries spoken to over plain HTTP (e.g. a loopback test registry)')
    .option('--registry-ca <file>', 'extra CA certificates (PEM) for registries and their token servers')
    .option('--registry-timeout-ms <n>', 'timeout per registry request', '5000');
}

