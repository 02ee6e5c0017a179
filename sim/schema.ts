/**
 * Request-parameter validator for the Proxmox VE 9.1 REST API, driven by the
 * official API schema (`pve-api-schema.json`, the data behind the API viewer).
 *
 * The schema data is NOT part of this module: the validator is built at run
 * time from the parsed JSON tree. What this module adds is the behaviour of
 * PVE's Perl code that the schema does not carry:
 *
 * - the router (`PVE::RESTHandler::find_handler`): path templates, `{param}`
 *   segments matching `\S+`, and the one `fragmentDelimiter => ''` subtree
 *   (storage content, where `{volume}` swallows the rest of the URI);
 * - `PVE::JSONSchema::check_prop`/`check_object`/`check_type`, including the
 *   order of checks (type, format, pattern, maxLength, minLength, maximum,
 *   minimum, enum), the exact error texts and the property-string parser
 *   (`parse_property_string`);
 * - the legacy parameter normalisation done by `PVE::RESTHandler::handle`
 *   (scalar -> one-element array, array -> comma list for `-list` formats);
 * - the duplicate path-parameter check of `PVE::HTTPServer::rest_handler`;
 * - re-implementations of the named string formats (`pve-vmid`, `pve-node`,
 *   `urlencoded`, ...). Formats that are not implemented pass and are
 *   collected in {@linkcode ApiSchema.unknownFormats}.
 *
 * @module
 */

import { resolve } from "node:path";

// ---------------------------------------------------------------------------
// Public types

/** A parameter value as received from a form-encoded or JSON request body. */
export type ParamValue =
  | string
  | number
  | boolean
  | null
  | ParamValue[]
  | { [key: string]: ParamValue };

/** PVE's per-parameter error map (`errors` in a 400 response). */
export type ParamErrors = Record<string, string>;

/** A JSON-schema-like definition as found in the PVE API schema. */
export interface JsonSchema {
  type?: string | string[] | JsonSchema;
  optional?: number | boolean;
  format?: string | Record<string, JsonSchema>;
  pattern?: string;
  enum?: (string | number)[];
  minimum?: number | string;
  maximum?: number | string;
  minLength?: number;
  maxLength?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: number | boolean | JsonSchema;
  requires?: string | JsonSchema;
  alias?: string;
  keyAlias?: string;
  default_key?: number | boolean;
  oneOf?: JsonSchema[];
  "type-property"?: string;
  "instance-types"?: string[];
  extends?: JsonSchema;
  group?: string;
  [key: string]: unknown;
}

/** One method of one API path (`info.<METHOD>` in the schema tree). */
export interface ApiMethodInfo {
  name?: string;
  method?: string;
  description?: string;
  protected?: number;
  proxyto?: string | null;
  allowtoken?: number;
  permissions?: unknown;
  parameters?: JsonSchema;
  returns?: JsonSchema;
  [key: string]: unknown;
}

/** A node of the schema tree (`pve-api-schema.json` is an array of these). */
export interface ApiTreeNode {
  path: string;
  text?: string;
  leaf?: number;
  info?: Record<string, ApiMethodInfo>;
  children?: ApiTreeNode[];
}

/** Result of {@linkcode ApiSchema.match}. */
export interface EndpointMatch {
  /** The path template, e.g. `/nodes/{node}/qemu/{vmid}/status/start`. */
  template: string;
  /** Values of the `{...}` segments, e.g. `{node: "pve1", vmid: "100"}`. */
  pathParams: Record<string, string>;
}

/** Options for {@linkcode ApiSchema.validate} and {@linkcode ApiSchema.normalize}. */
export interface ValidateOptions {
  /**
   * `true` when the values come from an `application/json` body (numbers,
   * booleans, arrays and objects are then taken as JSON values). With
   * `false` (the default) every scalar is treated as form-encoded text, so a
   * JS `true` becomes the string `"true"`.
   */
  json?: boolean;
  /**
   * The path parameters from {@linkcode ApiSchema.match}. When given, `params`
   * must hold only the query/body parameters: they are merged on top of the
   * path parameters, and a body value that differs from the path value gives
   * PVE's `duplicate parameter (already defined in URI) with conflicting
   * values!` error. When omitted, `params` must already include the path
   * parameters.
   */
  pathParams?: Record<string, string>;
  /**
   * Also run the few stateless parameter checks that PVE does in the handler
   * rather than in the schema and that use the same 400 error shape
   * (currently: firewall rule creation with `dport`/`sport` but no `proto`).
   * They run only when schema validation passed, as in PVE. Default `true`.
   */
  handlerChecks?: boolean;
}

// ---------------------------------------------------------------------------
// Constants taken from the PVE sources (not from the schema)

/**
 * Highest index of collapsed `name[n]` parameters. The schema only lists
 * `net[n]`; PVE accepts `net0` .. `net31`.
 */
const INDEX_MAX: Readonly<Record<string, number>> = {
  net: 31, // QEMU $MAX_NETS = 32, LXC too
  ipconfig: 31,
  scsi: 30,
  virtio: 15,
  sata: 5,
  ide: 3,
  unused: 255,
  serial: 3,
  usb: 13,
  parallel: 2,
  hostpci: 15,
  numa: 7,
  virtiofs: 9,
  mp: 255,
  dev: 255,
  link: 7, // corosync links
  acmedomain: 4,
};

/** Path templates whose last `{param}` takes the rest of the URI. */
const REST_PARAM_TEMPLATES: ReadonlySet<string> = new Set([
  "/nodes/{node}/storage/{storage}/content/{volume}",
]);

const MSG_NOT_DEFINED =
  "property is not defined in schema and the schema does not allow additional properties";
const MSG_MISSING = "property is missing and it is not optional";
const MSG_DUPLICATE =
  "duplicate parameter (already defined in URI) with conflicting values!";
/** How Perl prints a reference in a string context (the address is irrelevant). */
const PERL_ARRAY_STR = "ARRAY(0x55a5c3d0e2a8)";
const PERL_HASH_STR = "HASH(0x55a5c3d0e2a8)";
const PERL_BOOL_CLASS = "JSON::PP::Boolean";

// ---------------------------------------------------------------------------
// Small Perl-compatibility helpers

type Errors = Map<string, string>;

/** `PVE::JSONSchema::add_error`: several messages for one key are joined with a literal `\n`. */
function addError(errors: Errors, path: string, msg: string): void {
  const key = path === "" ? "_root" : path;
  const old = errors.get(key);
  errors.set(key, old === undefined ? msg : `${old}\\n${msg}`);
}

/** Perl truthiness of a request value. */
function perlTrue(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === "string") return v !== "" && v !== "0";
  if (typeof v === "number") return v !== 0;
  if (typeof v === "boolean") return v;
  return true;
}

/** `ref($value)` for a decoded request value ("" for a plain scalar). */
function perlRef(v: unknown): string {
  if (typeof v === "boolean") return PERL_BOOL_CLASS;
  if (Array.isArray(v)) return "ARRAY";
  if (v !== null && typeof v === "object") return "HASH";
  return "";
}

/** A value in Perl string context. */
function perlStr(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  if (typeof v === "boolean") return v ? "1" : "0";
  if (v === undefined || v === null) return "";
  return Array.isArray(v) ? PERL_ARRAY_STR : PERL_HASH_STR;
}

/**
 * Perl's `$` also matches before a final newline. Emulate that for anchored
 * regexes: test the string, then the string without one trailing `\n`.
 */
function perlTest(re: RegExp, s: string): boolean {
  return re.test(s) || (s.endsWith("\n") && re.test(s.slice(0, -1)));
}

/** Perl `split(/,/, $s)`: trailing empty fields are dropped. */
function perlSplit(s: string, sep: string): string[] {
  const parts = s.split(sep);
  while (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** `PVE::Tools::split_list`: NUL-separated, else split on `,`, `;` and whitespace. */
function splitList(s: string): string[] {
  if (s.includes("\0")) return perlSplit(s, "\0");
  const t = s.replace(/[,;]/g, " ").replace(/^\s+/, "");
  if (t === "") return [];
  const parts = t.split(/\s+/);
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

const SURROGATE_RE = /[\uD800-\uDFFF]/;

/** Perl `length` on a decoded string: code points, not UTF-16 units. */
function charLength(s: string): number {
  if (!SURROGATE_RE.test(s)) return s.length;
  let n = 0;
  for (const _ of s) n++;
  return n;
}

const INTEGER_RE = /^[+-]?\d+$/;
const NUMBER_RE = /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$/;

function isInteger(s: string): boolean {
  return perlTest(INTEGER_RE, s);
}

function isNumber(s: string): boolean {
  return perlTest(NUMBER_RE, s);
}

/** Anchored regex; Perl's `$` semantics come from {@linkcode perlTest}. */
function anchored(body: string, flags = ""): RegExp {
  return new RegExp(`^(?:${body})$`, flags);
}

/**
 * Convert a Perl regex as printed into the schema (`qr//` stringification such
 * as `(?^i:...)`, `{,16}`) into a JS regex anchored exactly like PVE's
 * `m/^$pattern$/` (so `a|b` means "starts with a or ends with b", as in Perl).
 * Returns undefined when JS cannot compile it.
 */
function perlPatternToRegExp(pattern: string): RegExp | undefined {
  let s = pattern.replace(/\(\?\^([a-z]*):/g, (_m, flags: string) => {
    const f = [...new Set(flags.replace(/[^ims]/g, ""))].join("");
    return f === "" ? "(?:" : `(?${f}:`;
  });
  s = s.replace(/(?<!\\)\{,(\d+)\}/g, "{0,$1}");
  try {
    // no grouping: `m/^$pattern$/` binds the anchors to the outer alternatives
    return new RegExp(`^${s}$`);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// IP address helpers (PVE::Tools $IPV4RE / $IPV6RE and a small Net::IP subset)

const IPV4_OCTET = "(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])";
const IPV4RE = `(?:(?:${IPV4_OCTET}\\.){3}${IPV4_OCTET})`;
const H16 = "(?:[0-9a-fA-F]{1,4})";
const LS32 = `(?:(?:${IPV4RE}|${H16}:${H16}))`;
const IPV6RE = "(?:" + [
  `(?:(?:(?:${H16}:){6})${LS32})`,
  `(?:(?:::(?:${H16}:){5})${LS32})`,
  `(?:(?:(?:${H16})?::(?:${H16}:){4})${LS32})`,
  `(?:(?:(?:(?:${H16}:){0,1}${H16})?::(?:${H16}:){3})${LS32})`,
  `(?:(?:(?:(?:${H16}:){0,2}${H16})?::(?:${H16}:){2})${LS32})`,
  `(?:(?:(?:(?:${H16}:){0,3}${H16})?::(?:${H16}:){1})${LS32})`,
  `(?:(?:(?:(?:${H16}:){0,4}${H16})?::)${LS32})`,
  `(?:(?:(?:(?:${H16}:){0,5}${H16})?::)${H16})`,
  `(?:(?:(?:(?:${H16}:){0,6}${H16})?::))`,
].join("|") + ")";

const IPV4_ONLY_RE = anchored(IPV4RE);
const IPV6_ONLY_RE = anchored(IPV6RE);
const IP_RE = anchored(`${IPV4RE}|${IPV6RE}`);
const CIDRV4_RE = new RegExp(`^(?:${IPV4RE})/(\\d+)$`);
const CIDRV6_RE = new RegExp(`^(?:${IPV6RE})/(\\d+)$`);

function execPerl(re: RegExp, s: string): RegExpExecArray | null {
  return re.exec(s) ?? (s.endsWith("\n") ? re.exec(s.slice(0, -1)) : null);
}

function isCidrV4(s: string): boolean {
  const m = execPerl(CIDRV4_RE, s);
  return m !== null && Number(m[1]) > 7 && Number(m[1]) <= 32;
}

function isCidrV6(s: string): boolean {
  const m = execPerl(CIDRV6_RE, s);
  return m !== null && Number(m[1]) > 7 && Number(m[1]) <= 128;
}

/** IPv4/IPv6 address to a bit string (for the Net::IP prefix check). */
function ipBits(ip: string): string | undefined {
  if (IPV4_ONLY_RE.test(ip)) {
    return ip.split(".").map((q) => Number(q).toString(2).padStart(8, "0"))
      .join("");
  }
  if (!IPV6_ONLY_RE.test(ip)) return undefined;
  let s = ip;
  const lastColon = s.lastIndexOf(":");
  const last = s.slice(lastColon + 1);
  if (last.includes(".")) {
    const o = last.split(".").map(Number);
    s = `${s.slice(0, lastColon + 1)}${((o[0] << 8) | o[1]).toString(16)}:${
      ((o[2] << 8) | o[3]).toString(16)
    }`;
  }
  let groups: string[];
  const dbl = s.indexOf("::");
  if (dbl < 0) {
    groups = s.split(":");
  } else {
    const head = dbl === 0 ? [] : s.slice(0, dbl).split(":");
    const tail = dbl + 2 >= s.length ? [] : s.slice(dbl + 2).split(":");
    groups = [
      ...head,
      ...Array<string>(8 - head.length - tail.length).fill("0"),
      ...tail,
    ];
  }
  return groups.map((g) => parseInt(g, 16).toString(2).padStart(16, "0"))
    .join("");
}

/**
 * A subset of `Net::IP->new`: a single address, `addr/len` (host bits must be
 * zero) or a range `a-b`. Returns the Net::IP error text, or undefined when
 * valid. The messages follow Net::IP's wording where known.
 */
function netIpError(input: string): string | undefined {
  const s = input.trim();
  const range = /^([^-\s]+)\s*-\s*([^-\s]+)$/.exec(s);
  if (range) {
    for (const ip of [range[1], range[2]]) {
      if (!IP_RE.test(ip)) return `Cannot determine IP version for ${ip}`;
    }
    const a = ipBits(range[1]) ?? "";
    const b = ipBits(range[2]) ?? "";
    if (a.length !== b.length) {
      return `IP addresses of different versions: ${range[1]} ${range[2]}`;
    }
    if (a > b) {
      return `Begin address is greater than end address ${range[1]} - ${
        range[2]
      }`;
    }
    return undefined;
  }
  const slash = s.indexOf("/");
  const ip = slash < 0 ? s : s.slice(0, slash);
  if (!IP_RE.test(ip)) {
    const quads = ip.split(".");
    if (quads.length === 4 && quads.every((q) => /^\d+$/.test(q))) {
      const bad = quads.find((q) => Number(q) > 255);
      if (bad !== undefined) return `Invalid quad in IP address ${ip} - ${bad}`;
    }
    return `Cannot determine IP version for ${ip}`;
  }
  if (slash < 0) return undefined;
  const lenText = s.slice(slash + 1);
  const bits = ipBits(ip) ?? "";
  if (!/^\d+$/.test(lenText) || Number(lenText) > bits.length) {
    return `Invalid prefix length /${lenText}`;
  }
  if (/1/.test(bits.slice(Number(lenText)))) {
    return `Invalid prefix ${bits}/${lenText}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Named string formats (re-implemented; messages as PVE words them)

/** A format validator returns the `die` text (ending in `\n`) or undefined. */
type CodeFormat = (value: string) => string | undefined;

function regexFormat(re: RegExp, msg: (v: string) => string): CodeFormat {
  return (v) => perlTest(re, v) ? undefined : msg(v);
}

const CONFIGID_RE = anchored("[a-z][a-z0-9_-]+", "i");
const STORAGE_ID_RE = /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i;
const VMID_RE = /^[1-9][0-9]{2,8}$/;
const NODE_RE = /^(?:[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/;
const DNS_NAME_RE =
  /^(([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/;
const EMAIL_USER = "[\\w+\\-~]+(\\.[\\w+\\-~]+)*";
const EMAIL_RE = anchored(`${EMAIL_USER}@[a-zA-Z0-9-]+(\\.[a-zA-Z0-9-]+)*`);
const EMAIL_USER_RE = anchored(EMAIL_USER);
const REALM = "[A-Za-z][A-Za-z0-9.\\-_]+";
const REALM_RE = anchored(REALM);
const USERID_RE = anchored(`([^\\s:/]+)@(${REALM})`);
const TOKENID_RE = anchored(`(([^\\s:/]+)@(${REALM}))!(${REALM})`);
const ACL_NAME_RE = /^[A-Za-z0-9.\-_]+$/;
const POOL_RE = /^[A-Za-z0-9.\-_]+(?:\/[A-Za-z0-9.\-_]+){0,2}$/;
const TAG_RE = /^[a-z0-9_][a-z0-9_\-+.]*$/i;
const MAC_RE = /^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i;
const IPV4_MASKS: ReadonlySet<string> = new Set(
  Array.from({ length: 33 }, (_, bits) => {
    const n = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return [24, 16, 8, 0].map((sh) => (n >>> sh) & 255).join(".");
  }),
);

function verifyVmid(v: string): string | undefined {
  return perlTest(VMID_RE, v)
    ? undefined
    : "value does not look like a valid VM ID\n";
}

function verifyStorageId(v: string): string | undefined {
  return perlTest(STORAGE_ID_RE, v)
    ? undefined
    : `storage ID '${v}' contains illegal characters\n`;
}

function verifyVolumeId(v: string): string | undefined {
  return perlTest(/^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i, v)
    ? undefined
    : `unable to parse volume ID '${v}'\n`;
}

function verifyDnsName(v: string): boolean {
  return perlTest(DNS_NAME_RE, v);
}

/** `PVE::JSONSchema::parse_idmap` for one list entry (storage-pair, bridge-pair). */
function idPairFormat(idFormat: CodeFormat): CodeFormat {
  return (input) => {
    let err: string | undefined;
    for (const entry of splitList(input)) {
      if (entry === "1") continue;
      const m = /^([^:]+):([^:]+)$/.exec(entry);
      const ids = m ? [m[1], m[2]] : [entry];
      for (const id of ids) {
        const e = idFormat(id);
        if (e !== undefined) {
          err = `entry '${entry}' contains invalid ID - ${e}\n`;
          break;
        }
      }
      if (err !== undefined) break;
    }
    return err === undefined ? undefined : `${err}\n`;
  };
}

function parseStartupOrder(v: string): boolean {
  if (!perlTrue(v)) return false;
  for (const p of perlSplit(v, ",")) {
    if (/^\s*$/.test(p)) continue;
    if (
      !perlTest(/^(order=)?(\d+)$/, p) && !perlTest(/^up=(\d+)$/, p) &&
      !perlTest(/^down=(\d+)$/, p)
    ) return false;
  }
  return true;
}

function verifyVlanIdOrRange(v: string): string | undefined {
  const m = execPerl(/^(\d+)(?:-(\d+))?$/, v);
  if (!m) return `invalid VLAN configuration '${v}'\n`;
  const [, start, end] = m;
  const badTag = (tag: string): boolean =>
    Number(tag) < 2 || Number(tag) > 4094;
  if (badTag(start)) return `invalid VLAN tag '${start}'\n`;
  if (perlTrue(end)) {
    if (badTag(end)) return `invalid VLAN tag '${end}'\n`;
    if (Number(start) >= Number(end)) {
      return `VLAN range must go from lower to higher tag '${v}'\n`;
    }
  }
  return undefined;
}

const VALID_DRIVE_NAMES: ReadonlySet<string> = new Set([
  ...Array.from({ length: 4 }, (_, i) => `ide${i}`),
  ...Array.from({ length: 6 }, (_, i) => `sata${i}`),
  ...Array.from({ length: 31 }, (_, i) => `scsi${i}`),
  ...Array.from({ length: 16 }, (_, i) => `virtio${i}`),
  "efidisk0",
  "tpmstate0",
]);

// pve-firewall data: /etc/protocols and /etc/services as shipped by Debian
// netbase (PVE reads the files on the node), and the iptables ICMP type names.
const PROTOCOLS: ReadonlyMap<string, number> = new Map(
  ("ip:0 hopopt:0 icmp:1 igmp:2 ggp:3 ipencap:4 st:5 tcp:6 egp:8 igp:9 pup:12 " +
    "udp:17 hmp:20 xns-idp:22 rdp:27 iso-tp4:29 dccp:33 xtp:36 ddp:37 " +
    "idpr-cmtp:38 ipv6:41 ipv6-route:43 ipv6-frag:44 idrp:45 rsvp:46 gre:47 " +
    "esp:50 ah:51 skip:57 ipv6-icmp:58 ipv6-nonxt:59 ipv6-opts:60 rspf:73 " +
    "vmtp:81 eigrp:88 ospf:89 ax.25:93 ipip:94 etherip:97 encap:98 pim:103 " +
    "ipcomp:108 vrrp:112 l2tp:115 isis:124 sctp:132 fc:133 " +
    "mobility-header:135 udplite:136 mpls-in-ip:137 manet:138 hip:139 " +
    "shim6:140 wesp:141 rohc:142 ethernet:143 mptcp:262")
    .split(" ").map((e) => {
      const [name, id] = e.split(":");
      return [name, Number(id)] as [string, number];
    }),
);
const PROTOCOL_IDS: ReadonlySet<string> = new Set(
  [...PROTOCOLS.values()].map(String),
);
const SERVICES: ReadonlySet<string> = new Set(
  ("tcpmux echo discard systat daytime netstat qotd chargen ftp-data ftp fsp " +
    "ssh telnet smtp time whois tacacs domain bootps bootpc tftp gopher finger " +
    "http kerberos iso-tsap acr-nema pop3 sunrpc auth nntp ntp epmap " +
    "netbios-ns netbios-dgm netbios-ssn imap2 snmp snmp-trap cmip-man " +
    "cmip-agent mailq xdmcp bgp smux qmtp z3950 ipx ptp-event ptp-general " +
    "pawserv zserv rpc2portmap codaauth2 clearcase ldap svrloc https snpp " +
    "microsoft-ds kpasswd submissions saft isakmp rtsp nqs asf-rmcp qmqp ipp " +
    "ldp exec biff login who shell syslog printer talk ntalk route gdomap uucp " +
    "klogin kshell dhcpv6-client dhcpv6-server afpovertcp nntps submission " +
    "ldaps tinc silc kerberos-adm domain-s rsync ftps-data ftps telnets imaps " +
    "pop3s socks proofd rootd openvpn rmiregistry lotusnote ms-sql-s ms-sql-m " +
    "ingreslock datametrics sa-msg-port kermit groupwise l2f radius " +
    "radius-acct cisco-sccp nfs gnunet rtcm-sc104 gsigatekeeper gris " +
    "cvspserver venus venus-se codasrv codasrv-se mon dict f5-globalsite " +
    "gsiftp gpsd gds-db icpv2 isns iscsi-target mysql ms-wbt-server nut " +
    "distcc daap svn suucp sysrqd sieve epmd remctl f5-iquery ntske " +
    "ipsec-nat-t iax mtn radmin-port sip sip-tls xmpp-client xmpp-server " +
    "cfengine mdns postgresql freeciv amqps amqp x11 x11-1 x11-2 x11-3 x11-4 " +
    "x11-5 x11-6 x11-7 gnutella-svc gnutella-rtr redis sge-qmaster sge-execd " +
    "mysql-proxy babel ircs-u bbs afs3-fileserver afs3-callback " +
    "afs3-prserver afs3-vlserver afs3-kaserver afs3-volser afs3-bos " +
    "afs3-update afs3-rmtsys font-service http-alt puppet bacula-dir " +
    "bacula-fd bacula-sd xmms2 nbd zabbix-agent zabbix-trapper amanda dicom " +
    "hkp db-lsp dcap gsidcap wnn6 kerberos4 kerberos-master passwd-server " +
    "krb-prop zephyr-srv zephyr-clt zephyr-hm iprop supfilesrv supfiledbg " +
    "poppassd moira-db moira-update moira-ureg spamd skkserv predict rmtcfg " +
    "xtel xtelw zebrasrv zebra ripd ripngd ospfd bgpd ospf6d ospfapi isisd " +
    "fax hylafax munin rplay nrpe nsca canna syslog-tls sane-port ircd " +
    "zope-ftp tproxy omniorb clc-build-daemon xinetd git zope webmin kamanda " +
    "amandaidx amidxtape sgi-cmsd sgi-crsd sgi-gcd sgi-cad binkp asp csync2 " +
    "dircproxy tfido fido").split(" "),
);
const ICMP_TYPES: ReadonlySet<string> = new Set(
  ("any echo-reply destination-unreachable network-unreachable " +
    "host-unreachable protocol-unreachable port-unreachable " +
    "fragmentation-needed source-route-failed network-unknown host-unknown " +
    "network-prohibited host-prohibited TOS-network-unreachable " +
    "TOS-host-unreachable communication-prohibited host-precedence-violation " +
    "precedence-cutoff source-quench redirect network-redirect host-redirect " +
    "TOS-network-redirect TOS-host-redirect echo-request router-advertisement " +
    "router-solicitation time-exceeded ttl-zero-during-transit " +
    "ttl-zero-during-reassembly parameter-problem ip-header-bad " +
    "required-option-missing timestamp-request timestamp-reply " +
    "address-mask-request address-mask-reply").split(" "),
);
const ICMPV6_TYPES: ReadonlySet<string> = new Set(
  ("destination-unreachable no-route communication-prohibited beyond-scope " +
    "address-unreachable port-unreachable failed-policy reject-route " +
    "packet-too-big time-exceeded ttl-zero-during-transit " +
    "ttl-zero-during-reassembly parameter-problem bad-header " +
    "unknown-header-type unknown-option echo-request echo-reply " +
    "router-solicitation router-advertisement neighbor-solicitation " +
    "neighbour-solicitation neighbor-advertisement neighbour-advertisement " +
    "redirect").split(" "),
);
const FW_ALIAS_RE = /^(?:(?:dc|guest)\/)?[A-Za-z][A-Za-z0-9\-_]+$/;

/** `PVE::Firewall::parse_port_name_number_or_range`. */
function fwPortSpec(str: string, dport: boolean): string | undefined {
  const elements = perlSplit(str, ",");
  if (str !== elements.join(",")) return "extraneous commas in list\n";
  let count = 0;
  let icmpPort = false;
  for (const item of elements) {
    const range = execPerl(/^([0-9]+):([0-9]+)$/, item);
    const single = execPerl(/^([0-9]+)$/, item);
    if (range) {
      count += 2;
      const [p1, p2] = [Number(range[1]), Number(range[2])];
      if (p1 > 65535) return `invalid port '${range[1]}'\n`;
      if (p2 > 65535) return `invalid port '${range[2]}'\n`;
      if (p1 > p2) {
        return `backwards range '${range[1]}:${
          range[2]
        }' not allowed, did you mean '${range[2]}:${range[1]}'?\n`;
      }
    } else if (single) {
      count += 1;
      if (Number(single[1]) > 65535) return `invalid port '${single[1]}'\n`;
    } else if (dport && (ICMP_TYPES.has(item) || ICMPV6_TYPES.has(item))) {
      icmpPort = true;
    } else if (!SERVICES.has(item)) {
      return `invalid port '${item}'\n`;
    }
  }
  if (icmpPort && count > 0) return "ICMP ports not allowed in port range\n";
  if (count > 15) return "too many entries in port list (> 15 numbers)\n";
  return undefined;
}

/** `PVE::Firewall::parse_address_list`. */
function fwAddrSpec(str: string): string | undefined {
  if (perlTest(/^(\+)(\S+)$/, str)) {
    return charLength(str) > 65 ? "ipset name too long\n" : undefined;
  }
  if (perlTest(FW_ALIAS_RE, str)) {
    return charLength(str) > 64 ? "alias name too long\n" : undefined;
  }
  const elements = perlSplit(str, ",");
  if (str !== elements.join(",")) return "extraneous commas in list\n";
  let ipversion = 0;
  let iprange = false;
  for (const elem of elements) {
    const err = netIpError(elem);
    if (err !== undefined) return `invalid IP address: ${err}\n`;
    if (elem.includes("-")) iprange = true;
    const first = elem.split(/[-/]/)[0].trim();
    const version = IPV4_ONLY_RE.test(first) ? 4 : 6;
    if (ipversion !== 0 && version !== ipversion) {
      return `detected mixed ipv4/ipv6 addresses in address list '${str}'\n`;
    }
    ipversion = version;
  }
  if (iprange && elements.length > 1) {
    return "you can't use a range in a list\n";
  }
  return undefined;
}

const IP_OR_CIDR_RE = anchored(`(?:${IPV6RE}|${IPV4RE})(/(\\d+))?`);
const FW_IP_ALIAS_RE = /^[A-Za-z][A-Za-z0-9\-_]+$/;

function verifyIpOrCidr(v: string): string | undefined {
  if (perlTest(IP_OR_CIDR_RE, v)) {
    const err = netIpError(v);
    return err === undefined ? undefined : `${err}\n`;
  }
  return "value does not look like a valid IP address or CIDR network\n";
}

function verifyUserid(v: string): string | undefined {
  const len = charLength(v);
  if (len < 3) return `user name '${v}' is too short\n`;
  if (len > 64) return `user name '${v}' is too long (${len} > 64)\n`;
  return perlTest(USERID_RE, v)
    ? undefined
    : `value '${v}' does not look like a valid user name\n`;
}

/** Code formats, keyed by the name PVE registers them under. */
const CODE_FORMATS: Readonly<Record<string, CodeFormat>> = {
  // pve-common PVE::JSONSchema
  "string": () => undefined,
  "urlencoded": regexFormat(
    /^[-%a-zA-Z0-9_.!~*'()]*$/,
    (v) => `invalid urlencoded string: ${v}\n`,
  ),
  "pve-configid": regexFormat(
    CONFIGID_RE,
    (v) => `invalid configuration ID '${v}'\n`,
  ),
  "pve-storage-id": verifyStorageId,
  "pve-bridge-id": regexFormat(
    /^[-_.\w\d]+$/,
    (v) => `invalid bridge ID '${v}'\n`,
  ),
  "acme-plugin-id": regexFormat(
    STORAGE_ID_RE,
    (v) => `ACME plugin ID '${v}' contains illegal characters\n`,
  ),
  "pve-vmid": verifyVmid,
  "pve-node": regexFormat(
    NODE_RE,
    () => "value does not look like a valid node name\n",
  ),
  "storage-pair": idPairFormat(verifyStorageId),
  "bridge-pair": idPairFormat(
    regexFormat(/^[-_.\w\d]+$/, (v) => `invalid bridge ID '${v}'\n`),
  ),
  "mac-addr": regexFormat(
    MAC_RE,
    () => "value does not look like a valid unicast MAC address\n",
  ),
  "ipv4": regexFormat(
    IPV4_ONLY_RE,
    () => "value does not look like a valid IPv4 address\n",
  ),
  "ipv6": regexFormat(
    IPV6_ONLY_RE,
    () => "value does not look like a valid IPv6 address\n",
  ),
  "ip": regexFormat(
    IP_RE,
    () => "value does not look like a valid IP address\n",
  ),
  "ldap-simple-attr": regexFormat(
    /^[a-zA-Z0-9]+$/,
    (v) => `value '${v}' does not look like a simple ldap attribute name\n`,
  ),
  "ipv4mask": (v) =>
    IPV4_MASKS.has(v)
      ? undefined
      : "value does not look like a valid IP netmask\n",
  "CIDRv4": (v) =>
    isCidrV4(v)
      ? undefined
      : "value does not look like a valid IPv4 CIDR network\n",
  "CIDRv6": (v) =>
    isCidrV6(v)
      ? undefined
      : "value does not look like a valid IPv6 CIDR network\n",
  "CIDR": (v) =>
    isCidrV4(v) || isCidrV6(v)
      ? undefined
      : "value does not look like a valid CIDR network\n",
  "pve-ipv4-config": (v) =>
    perlTest(/^(?:dhcp|manual)$/, v) || isCidrV4(v)
      ? undefined
      : "value does not look like a valid ipv4 network configuration\n",
  "pve-ipv6-config": (v) =>
    perlTest(/^(?:auto|dhcp|manual)$/, v) || isCidrV6(v)
      ? undefined
      : "value does not look like a valid ipv6 network configuration\n",
  "email": regexFormat(
    EMAIL_RE,
    () => "value does not look like a valid email address\n",
  ),
  "email-or-username": (v) =>
    perlTest(EMAIL_RE, v) || perlTest(EMAIL_USER_RE, v)
      ? undefined
      : "value does not look like a valid email address or user name\n",
  "dns-name": (v) =>
    verifyDnsName(v)
      ? undefined
      : "value does not look like a valid DNS name\n",
  "pve-iface": regexFormat(
    /^[a-z][a-z0-9_]{1,20}([:.]\d+)?$/i,
    (v) => `invalid network interface name '${v}'\n`,
  ),
  "pve-vlan-id-or-range": verifyVlanIdOrRange,
  "address": (v) =>
    perlTest(IP_RE, v) || verifyDnsName(v)
      ? undefined
      : `value does not look like a valid address: ${v}\n`,
  "disk-size": regexFormat(
    /^(\d+(\.\d+)?)([KMGT])?$/,
    (v) => `value does not look like a valid disk size: ${v}\n`,
  ),
  "pve-startup-order": (v) =>
    parseStartupOrder(v) ? undefined : "unable to parse startup options\n",
  "pve-tag": regexFormat(TAG_RE, () => "invalid characters in tag\n"),
  "pve-tfa-secret": (v) =>
    perlTest(/^v2-0x[0-9a-fA-F]{16,128}$/, v) ||
      perlTest(/^v2-[A-Z2-7=]{16,128}$/, v) ||
      perlTest(/^(?:[A-Z2-7=]{16}|[A-Fa-f0-9]{40})$/, v)
      ? undefined
      : "unable to decode TFA secret\n",
  "pve-task-status-type": regexFormat(
    /^(ok|error|warning|unknown)$/i,
    (v) => `invalid status '${v}'\n`,
  ),
  // pve-access-control
  "pve-realm": regexFormat(
    REALM_RE,
    () => "value does not look like a valid realm\n",
  ),
  "pve-userid": verifyUserid,
  "pve-tokenid": regexFormat(
    TOKENID_RE,
    (v) => `value '${v}' does not look like a valid token ID\n`,
  ),
  "pve-groupid": regexFormat(
    ACL_NAME_RE,
    (v) => `group name '${v}' contains invalid characters\n`,
  ),
  "pve-roleid": regexFormat(
    ACL_NAME_RE,
    (v) => `role name '${v}' contains invalid characters\n`,
  ),
  "pve-poolid": regexFormat(
    POOL_RE,
    (v) => `pool name '${v}' contains invalid characters\n`,
  ),
  // pve-storage
  "pve-volume-id": verifyVolumeId,
  // qemu-server
  "pve-volume-id-or-qm-path": (v) =>
    v === "none" || v === "cdrom" || v.startsWith("/")
      ? undefined
      : verifyVolumeId(v),
  "pve-volume-id-or-absolute-path": (v) =>
    v.startsWith("/") ? undefined : verifyVolumeId(v),
  "pve-qm-bootdisk": (v) =>
    VALID_DRIVE_NAMES.has(v) ? undefined : `invalid boot disk '${v}'\n`,
  // pve-container
  "pve-lxc-mp-string": (v) =>
    /\/\.\.?\//.test(v) || perlTest(/\/\.\.?$/, v) || /^\.\.\//.test(v)
      ? `${v} contains illegal character sequences\n`
      : undefined,
  // pve-firewall
  "IPorCIDR": verifyIpOrCidr,
  "IPorCIDRorAlias": (v) =>
    perlTest(FW_IP_ALIAS_RE, v) ? undefined : verifyIpOrCidr(v),
  "pve-fw-addr-spec": fwAddrSpec,
  "pve-fw-dport-spec": (v) => fwPortSpec(v, true),
  "pve-fw-sport-spec": (v) => fwPortSpec(v, false),
  "pve-fw-protocol-spec": (v) =>
    perlTrue(v) && !PROTOCOLS.has(v) && v !== "icmpv6" &&
      !PROTOCOL_IDS.has(v)
      ? `unknown protocol '${v}'\n`
      : undefined,
  "pve-fw-icmp-type-spec": (v) =>
    ICMP_TYPES.has(v) || ICMPV6_TYPES.has(v) || v === ""
      ? undefined
      : `invalid icmp-type value '${v}'\n`,
};

/** Named hash (property-string) formats that the schema only names. */
const HASH_FORMATS: Readonly<Record<string, Record<string, JsonSchema>>> = {
  // qemu-server $ipconfig_fmt
  "pve-qm-ipconfig": {
    ip: { type: "string", format: "pve-ipv4-config", optional: 1 },
    gw: { type: "string", format: "ipv4", optional: 1, requires: "ip" },
    ip6: { type: "string", format: "pve-ipv6-config", optional: 1 },
    gw6: { type: "string", format: "ipv6", optional: 1, requires: "ip6" },
  },
  // pve-common $remote_format
  "proxmox-remote": {
    host: { type: "string" },
    port: { type: "integer", optional: 1 },
    apitoken: { type: "string" },
    fingerprint: {
      type: "string",
      optional: 1,
      pattern: "([A-Fa-f0-9]{2}:){31}[A-Fa-f0-9]{2}",
    },
  },
};

// ---------------------------------------------------------------------------
// Compilation of schemas into checker closures

type PropCheck = (
  value: unknown,
  path: string,
  errors: Errors,
  instanceType?: unknown,
) => void;

/** Returns the `$@` text of a failed format check, or undefined. */
type FormatCheck = (value: string, path: string) => string | undefined;

const enum Normalize {
  None,
  JoinList,
  WrapArray,
}

interface CompiledProp {
  check: PropCheck;
  requires?: string;
  typeProperty?: string;
  /** `instance-types` of each `oneOf` alternative (undefined: no `oneOf`). */
  oneOfTypes?: (string[] | undefined)[];
  normalize: Normalize;
  defaultKey: boolean;
  alias?: string;
  keyAlias?: string;
  maxIndex?: number;
  /** `type: boolean` (property strings accept on/off/yes/no/true/false). */
  isBoolean: boolean;
  /** check_prop would do nothing for an absent value (fast path). */
  missingOk: boolean;
}

interface CompiledObject {
  props: Map<string, CompiledProp>;
  /** Properties that must be checked even when absent (not `missingOk`). */
  eager: [string, CompiledProp][];
  /** `net` -> the `net[n]` property (with `maxIndex`). */
  indexed: Map<string, CompiledProp>;
  /** undefined/1: allow unknown keys; 0: deny; object: check against it. */
  additional: "allow" | "deny" | PropCheck;
}

interface CompiledFormatObject {
  obj: CompiledObject;
  /** The key marked `default_key`, if any. */
  defaultKey?: string;
}

interface CompiledEndpoint {
  info: ApiMethodInfo;
  /** undefined when PVE does not validate (no parameters / no properties). */
  obj?: CompiledObject;
  topTypeCheck?: PropCheck;
  firewallRuleCreate: boolean;
}

interface Ctx {
  unknownFormats: Set<string>;
  unsupportedPatterns: Set<string>;
  namedFormats: Map<string, FormatCheck | undefined>;
}

function schemaNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && v !== "" && !Number.isNaN(Number(v))) {
    return Number(v);
  }
  return undefined;
}

function compileFormat(format: unknown, ctx: Ctx): FormatCheck | undefined {
  if (format !== null && typeof format === "object") {
    const cf = compileFormatObject(format as Record<string, JsonSchema>, ctx);
    return (v, path) => parsePropertyString(cf, v, path);
  }
  if (typeof format !== "string" || format === "regex") return undefined;
  if (ctx.namedFormats.has(format)) return ctx.namedFormats.get(format);
  let result: FormatCheck | undefined;
  const m = /^(.*?)(?:-(list|opt))?$/.exec(format) as RegExpExecArray;
  const name = m[1];
  const kind = m[2] ?? "none";
  const code = Object.hasOwn(CODE_FORMATS, name)
    ? CODE_FORMATS[name]
    : undefined;
  const hash = Object.hasOwn(HASH_FORMATS, name)
    ? HASH_FORMATS[name]
    : undefined;
  if (code === undefined && hash === undefined) {
    ctx.unknownFormats.add(format);
  } else if (hash !== undefined) {
    if (kind !== "none") {
      result = () => `'-${kind}' format must have code ref, not hash\n`;
    } else {
      const cf = compileFormatObject(hash, ctx);
      result = (v, path) => parsePropertyString(cf, v, path);
    }
  } else if (code !== undefined) {
    if (kind === "list") {
      result = (v) => {
        for (const item of splitList(v)) {
          const err = code(item);
          if (err !== undefined) return err;
        }
        return undefined;
      };
    } else if (kind === "opt") {
      result = (v) => perlTrue(v) ? code(v) : undefined;
    } else {
      result = (v) => code(v);
    }
  }
  ctx.namedFormats.set(format, result);
  return result;
}

function compileFormatObject(
  format: Record<string, JsonSchema>,
  ctx: Ctx,
): CompiledFormatObject {
  const obj = compileObject(format, 0, ctx, false);
  let defaultKey: string | undefined;
  for (const [k, p] of obj.props) {
    if (p.defaultKey) {
      defaultKey = k;
      break;
    }
  }
  return { obj, defaultKey };
}

/** `PVE::JSONSchema::parse_property_string` + `check_object`. */
function parsePropertyString(
  cf: CompiledFormatObject,
  data: string,
  path: string,
): string | undefined {
  const res = new Map<string, unknown>();
  let defaultKey: string | undefined;
  for (const part of perlSplit(data, ",")) {
    if (/^\s*$/.test(part)) continue;
    const kv = /^([^=]+)=([^\n]+)\n?$/.exec(part);
    if (kv) {
      let k = kv[1];
      let v: unknown = kv[2];
      if (res.get(k) !== undefined) {
        return `duplicate key in comma-separated list property: ${k}\n`;
      }
      let prop = cf.obj.props.get(k);
      if (prop?.alias !== undefined) {
        if (prop.keyAlias !== undefined) {
          if (res.get(prop.keyAlias) !== undefined) {
            return `key alias '${prop.keyAlias}' is already defined\n`;
          }
          res.set(prop.keyAlias, k);
        }
        k = prop.alias;
        prop = cf.obj.props.get(k);
      }
      if (prop === undefined) {
        return `invalid key in comma-separated list property: ${k}\n`;
      }
      if (prop.isBoolean) {
        const s = v as string;
        if (/^(1|on|yes|true)$/i.test(s)) v = "1";
        else if (/^(0|off|no|false)$/i.test(s)) v = "0";
      }
      res.set(k, v);
    } else if (!part.includes("=")) {
      if (defaultKey !== undefined) {
        return `duplicate key in comma-separated list property: ${defaultKey}\n`;
      }
      if (cf.defaultKey === undefined) {
        return "value without key, but schema does not define a default key\n";
      }
      defaultKey = cf.defaultKey;
      if (perlTrue(res.get(defaultKey))) {
        return `duplicate key in comma-separated list property: ${defaultKey}\n`;
      }
      res.set(defaultKey, part);
    } else {
      return "missing key in comma-separated list property\n";
    }
  }
  const errors: Errors = new Map();
  checkObject(cf.obj, path, res, errors);
  if (errors.size === 0) return undefined;
  let msg = "format error\n";
  for (const [k, e] of errors) msg += `${k}: ${e}\n`;
  return msg;
}

function compileObject(
  properties: Record<string, JsonSchema>,
  additionalProperties: unknown,
  ctx: Ctx,
  collapseIndexed: boolean,
): CompiledObject {
  const props = new Map<string, CompiledProp>();
  const indexed = new Map<string, CompiledProp>();
  for (const [name, schema] of Object.entries(properties)) {
    const prop = compileNamedProp(schema, ctx);
    const m = collapseIndexed ? /^([a-z]+)\[n\]$/.exec(name) : null;
    if (m) {
      prop.maxIndex = INDEX_MAX[m[1]] ?? Number.MAX_SAFE_INTEGER;
      indexed.set(m[1], prop);
    } else {
      props.set(name, prop);
    }
  }
  let additional: CompiledObject["additional"] = "allow";
  if (
    additionalProperties !== null && typeof additionalProperties === "object"
  ) {
    additional = compileProp(additionalProperties as JsonSchema, ctx);
  } else if (
    additionalProperties !== undefined && !perlTrue(additionalProperties)
  ) {
    additional = "deny";
  }
  const eager = [...props].filter(([, p]) => !p.missingOk);
  return { props, eager, indexed, additional };
}

function compileNamedProp(schema: JsonSchema, ctx: Ctx): CompiledProp {
  const s: JsonSchema = schema !== null && typeof schema === "object"
    ? schema
    : {};
  const type = typeof s.type === "string" ? s.type : "";
  const format = typeof s.format === "string" ? s.format : "";
  let normalize = Normalize.None;
  if (type === "string" && /-list$/.test(format)) {
    normalize = Normalize.JoinList;
  } else if (type === "array") normalize = Normalize.WrapArray;
  return {
    check: compileProp(schema, ctx),
    requires: typeof s.requires === "string" ? s.requires : undefined,
    typeProperty: typeof s["type-property"] === "string"
      ? s["type-property"]
      : undefined,
    oneOfTypes: Array.isArray(s.oneOf)
      ? s.oneOf.map((alt) =>
        Array.isArray(alt?.["instance-types"])
          ? alt["instance-types"]
          : undefined
      )
      : undefined,
    normalize,
    defaultKey: perlTrue(s.default_key),
    alias: typeof s.alias === "string" ? s.alias : undefined,
    keyAlias: typeof s.keyAlias === "string" ? s.keyAlias : undefined,
    isBoolean: type === "boolean",
    missingOk: (perlTrue(s.optional) || perlTrue(s.alias) ||
      perlTrue(s.group)) &&
      s.oneOf === undefined && s.extends === undefined &&
      s["type-property"] === undefined,
  };
}

/** `check_type` for one named type; returns false after adding the error. */
function compileTypeCheck(
  type: unknown,
  ctx: Ctx,
): ((value: unknown, path: string, errors: Errors) => boolean) | undefined {
  if (type === undefined || type === null || type === "") return undefined;
  if (Array.isArray(type)) {
    const alts = type.map((t) => compileTypeCheck(t, ctx));
    const text = type.join("|");
    return (value, path, errors) => {
      for (const alt of alts) {
        if (alt === undefined || alt(value, path, new Map())) return true;
      }
      addError(errors, path, `type check ('${text}') failed`);
      return false;
    };
  }
  if (typeof type === "object") {
    const check = compileProp(type as JsonSchema, ctx);
    return (value, path, errors) => {
      const tmp: Errors = new Map();
      check(value, path, tmp);
      if (tmp.size === 0) return true;
      addError(errors, path, "type check failed");
      return false;
    };
  }
  const t = String(type);
  switch (t) {
    case "any":
      return undefined;
    case "null":
      return (_v, path, errors) => {
        addError(
          errors,
          path,
          "type check ('null') failed - value is not null",
        );
        return false;
      };
    case "array":
    case "object":
    case "coderef": {
      const want = t === "array" ? "ARRAY" : t === "object" ? "HASH" : "CODE";
      return (value, path, errors) => {
        if (perlRef(value) === want) return true;
        addError(errors, path, `type check ('${t}') failed`);
        return false;
      };
    }
    default: {
      const scalarOk: (s: string) => boolean = t === "boolean"
        ? (s) => s === "1" || s === "0"
        : t === "integer"
        ? isInteger
        : t === "number"
        ? isNumber
        : () => true;
      return (value, path, errors) => {
        const ref = perlRef(value);
        if (ref !== "") {
          if (t === "boolean" && ref === PERL_BOOL_CLASS) return true;
          addError(errors, path, `type check ('${t}') failed - got ${ref}`);
          return false;
        }
        const s = perlStr(value);
        if (scalarOk(s)) return true;
        addError(errors, path, `type check ('${t}') failed - got '${s}'`);
        return false;
      };
    }
  }
}

/** Compile `check_prop` for one schema. */
function compileProp(schema: JsonSchema, ctx: Ctx): PropCheck {
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
    return (_v, path, errors) =>
      addError(errors, path, "Invalid schema definition.");
  }
  const s = schema;
  const optional = perlTrue(s.optional) || perlTrue(s.alias) ||
    perlTrue(s.group);
  const isNullType = s.type === "null";
  const typeCheck = compileTypeCheck(s.type, ctx);
  const extendsCheck = s.extends !== undefined
    ? compileProp(s.extends, ctx)
    : undefined;

  // oneOf (only used together with type-property in the PVE 9 schema)
  const oneOf = Array.isArray(s.oneOf) ? s.oneOf : undefined;
  const hasTypeProperty = typeof s["type-property"] === "string";
  const oneOfChecks = oneOf?.map((alt) => compileProp(alt, ctx));
  const hasInstanceTypes = s["instance-types"] !== undefined;

  // array items / nested objects
  const itemsCheck = s.items !== undefined && !Array.isArray(s.items)
    ? compileProp(s.items, ctx)
    : undefined;
  const itemsIsTuple = Array.isArray(s.items);
  const nestedObject = s.properties !== undefined ||
      perlTrue(s.additionalProperties)
    ? compileObject(
      (s.properties ?? {}) as Record<string, JsonSchema>,
      s.additionalProperties,
      ctx,
      false,
    )
    : undefined;

  // scalar checks
  const format = s.format !== undefined
    ? compileFormat(s.format, ctx)
    : undefined;
  let pattern: RegExp | undefined;
  if (typeof s.pattern === "string" && s.pattern !== "") {
    pattern = perlPatternToRegExp(s.pattern);
    if (pattern === undefined) ctx.unsupportedPatterns.add(s.pattern);
  }
  const maxLength = schemaNumber(s.maxLength);
  const minLength = schemaNumber(s.minLength);
  const maximum = schemaNumber(s.maximum);
  const minimum = schemaNumber(s.minimum);
  const maxText = s.maximum !== undefined ? String(s.maximum) : "";
  const minText = s.minimum !== undefined ? String(s.minimum) : "";
  const enumValues = Array.isArray(s.enum)
    ? new Set(s.enum.map((e) => perlStr(e)))
    : undefined;
  const enumText = Array.isArray(s.enum)
    ? s.enum.map((e) => perlStr(e)).join(", ")
    : "";

  return (value, path, errors, instanceType) => {
    let optionalForType = false;
    if (oneOfChecks !== undefined && oneOf !== undefined) {
      if (hasTypeProperty) {
        optionalForType = true;
        for (let i = 0; i < oneOf.length; i++) {
          if (!perlTrue(instanceType)) break;
          const its = oneOf[i]["instance-types"];
          if (its === undefined) {
            addError(
              errors,
              path,
              "missing 'instance-types' in oneOf alternative",
            );
            return;
          }
          if (!its.some((t) => t === perlStr(instanceType))) continue;
          optionalForType = perlTrue(oneOf[i].optional);
          oneOfChecks[i](value, path, errors);
        }
      } else {
        const collected: Errors = new Map();
        let valid = false;
        for (let i = 0; i < oneOfChecks.length; i++) {
          const inner: Errors = new Map();
          oneOfChecks[i](value, `${path}.oneOf[${i}]`, inner);
          if (inner.size === 0) {
            valid = true;
            break;
          }
          for (const [k, e] of inner) addError(collected, k, e);
        }
        if (!valid) { for (const [k, e] of collected) addError(errors, k, e); }
      }
    } else if (perlTrue(instanceType)) {
      if (!hasInstanceTypes) {
        addError(errors, path, "missing 'instance-types'");
        return;
      }
    }

    if (extendsCheck !== undefined) extendsCheck(value, path, errors);

    if (value === undefined || value === null) {
      if (isNullType) return;
      if (!optional && !optionalForType) addError(errors, path, MSG_MISSING);
      return;
    }

    if (typeCheck !== undefined && !typeCheck(value, path, errors)) return;

    if (typeof value === "object" || typeof value === "boolean") {
      if (Array.isArray(value)) {
        if (itemsIsTuple) return;
        if (itemsCheck !== undefined) {
          for (let i = 0; i < value.length; i++) {
            itemsCheck(value[i], `${path}[${i}]`, errors);
          }
        }
      } else if (nestedObject !== undefined) {
        if (typeof value === "boolean") {
          addError(errors, path, "an object is required");
        } else {
          checkObject(
            nestedObject,
            path,
            new Map(Object.entries(value as Record<string, unknown>)),
            errors,
          );
        }
      }
      return;
    }

    const str = perlStr(value);

    if (format !== undefined) {
      const err = format(str, path);
      if (err !== undefined) {
        addError(errors, path, `invalid format - ${err}`);
        return;
      }
    }
    if (pattern !== undefined && !perlTest(pattern, str)) {
      addError(errors, path, "value does not match the regex pattern");
      return;
    }
    if (maxLength !== undefined || minLength !== undefined) {
      const len = charLength(str);
      if (maxLength !== undefined && len > maxLength) {
        addError(
          errors,
          path,
          `value may only be ${maxLength} characters long`,
        );
        return;
      }
      if (minLength !== undefined && len < minLength) {
        addError(
          errors,
          path,
          `value must be at least ${minLength} characters long`,
        );
        return;
      }
    }
    if ((maximum !== undefined || minimum !== undefined) && isNumber(str)) {
      const n = Number(str);
      if (maximum !== undefined && n > maximum) {
        addError(errors, path, `value must have a maximum value of ${maxText}`);
        return;
      }
      if (minimum !== undefined && n < minimum) {
        addError(errors, path, `value must have a minimum value of ${minText}`);
        return;
      }
    }
    if (enumValues !== undefined && !enumValues.has(str)) {
      addError(
        errors,
        path,
        `value '${str}' does not have a value in the enumeration '${enumText}'`,
      );
    }
  };
}

/** Find the schema property for a parameter name (`net0` -> `net[n]`). */
function resolveProp(
  obj: CompiledObject,
  key: string,
): CompiledProp | undefined {
  const direct = obj.props.get(key);
  if (direct !== undefined || obj.indexed.size === 0) return direct;
  const m = /^([a-z]+)(\d+)$/.exec(key);
  if (m === null) return undefined;
  const prop = obj.indexed.get(m[1]);
  if (prop === undefined) return undefined;
  // only canonical indexes exist in PVE's expanded schema (net0..net31)
  if (String(Number(m[2])) !== m[2]) return undefined;
  return Number(m[2]) <= (prop.maxIndex ?? 0) ? prop : undefined;
}

/** `PVE::JSONSchema::check_object`. */
function checkObject(
  obj: CompiledObject,
  path: string,
  value: Map<string, unknown>,
  errors: Errors,
): void {
  const sub = (k: string): string => path === "" ? k : `${path}.${k}`;
  const instanceType = (prop: CompiledProp): unknown =>
    prop.typeProperty !== undefined ? value.get(prop.typeProperty) : undefined;
  // Perl runs check_prop for every schema key; absent optional keys are a
  // no-op, so only the "eager" ones are visited here and present values below.
  for (const [k, prop] of obj.eager) {
    prop.check(value.get(k), sub(k), errors, instanceType(prop));
  }
  const resolved: (CompiledProp | undefined)[] = [];
  for (const [k, v] of value) {
    const prop = resolveProp(obj, k);
    if (prop !== undefined && (prop.missingOk || !obj.props.has(k))) {
      prop.check(v, sub(k), errors, instanceType(prop));
    }
    resolved.push(prop);
  }
  let i = 0;
  for (const k of value.keys()) {
    const prop = resolved[i++];
    const newpath = sub(k);
    if (prop !== undefined) {
      if (prop.requires !== undefined) {
        const req = value.get(prop.requires);
        if (req === undefined || req === null) {
          addError(
            errors,
            sub(prop.requires),
            `missing property - '${newpath}' requires this property`,
          );
        }
      }
      let matched = true;
      if (prop.oneOfTypes !== undefined) {
        const it = prop.typeProperty !== undefined
          ? value.get(prop.typeProperty)
          : undefined;
        const its = it === undefined || it === null ? undefined : perlStr(it);
        matched = prop.oneOfTypes.some((types) =>
          types === undefined || (its !== undefined && types.includes(its))
        );
      }
      if (matched) continue;
    }
    if (obj.additional === "deny") {
      addError(errors, newpath, MSG_NOT_DEFINED);
    } else if (typeof obj.additional === "function") {
      obj.additional(value.get(k), newpath, errors);
    }
  }
}

// ---------------------------------------------------------------------------
// Router

interface TrieNode {
  literal: Map<string, TrieNode>;
  param?: { name: string; node: TrieNode; rest: boolean };
  /** method -> template */
  methods: Map<string, string>;
}

function newTrieNode(): TrieNode {
  return { literal: new Map(), methods: new Map() };
}

const PATH_PARAM_RE = /^\{([\w-]+)(?::.*)?\}$/;
const WHITESPACE_RE = /\s/;

// ---------------------------------------------------------------------------
// The schema object

/** The PVE API schema: a router plus a parameter validator. */
export class ApiSchema {
  /**
   * Names of string formats met in compiled endpoints that this module does
   * not implement (values in such parameters are not format-checked).
   */
  readonly unknownFormats: Set<string> = new Set();
  /** Perl regex patterns from the schema that JS cannot compile (skipped). */
  readonly unsupportedPatterns: Set<string> = new Set();

  readonly #root: TrieNode = newTrieNode();
  readonly #raw = new Map<string, { template: string; info: ApiMethodInfo }>();
  readonly #compiled = new Map<string, CompiledEndpoint>();
  readonly #ctx: Ctx;

  private constructor() {
    this.#ctx = {
      unknownFormats: this.unknownFormats,
      unsupportedPatterns: this.unsupportedPatterns,
      namedFormats: new Map(),
    };
  }

  /** Build from the parsed `pve-api-schema.json` tree. */
  static fromTree(tree: ApiTreeNode[]): ApiSchema {
    if (!Array.isArray(tree)) {
      throw new TypeError("API schema tree must be an array of nodes");
    }
    const schema = new ApiSchema();
    const walk = (nodes: ApiTreeNode[]): void => {
      for (const node of nodes) {
        if (node.info && typeof node.path === "string") {
          for (const [method, info] of Object.entries(node.info)) {
            schema.#add(method, node.path, info);
          }
        }
        if (Array.isArray(node.children)) walk(node.children);
      }
    };
    walk(tree);
    return schema;
  }

  #add(method: string, template: string, info: ApiMethodInfo): void {
    let node = this.#root;
    for (const seg of template.split("/")) {
      if (seg === "") continue;
      const m = PATH_PARAM_RE.exec(seg);
      if (m) {
        if (node.param === undefined) {
          node.param = {
            name: m[1],
            node: newTrieNode(),
            rest: REST_PARAM_TEMPLATES.has(template),
          };
        }
        node = node.param.node;
      } else {
        let next = node.literal.get(seg);
        if (next === undefined) {
          next = newTrieNode();
          node.literal.set(seg, next);
        }
        node = next;
      }
    }
    node.methods.set(method, template);
    this.#raw.set(`${method} ${template}`, { template, info });
  }

  /** Number of endpoints (path + method pairs). */
  get size(): number {
    return this.#raw.size;
  }

  /**
   * Route a request path (without `/api2/json`, already percent-decoded as
   * PVE does) to its template. Returns null when PVE would answer 501
   * (`Method '<M> <path>' not implemented`).
   */
  match(method: string, path: string): EndpointMatch | null {
    const segs = path.split("/");
    let node = this.#root;
    const pathParams: Record<string, string> = {};
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i];
      if (seg === "") continue;
      const lit = node.literal.get(seg);
      if (lit !== undefined) {
        node = lit;
        continue;
      }
      const param = node.param;
      if (param === undefined) return null;
      if (param.rest) {
        const rest = segs.slice(i).filter((s) => s !== "").join("/");
        if (WHITESPACE_RE.test(rest)) return null;
        pathParams[param.name] = rest;
        node = param.node;
        break;
      }
      if (WHITESPACE_RE.test(seg)) return null;
      pathParams[param.name] = seg;
      node = param.node;
    }
    const template = node.methods.get(method);
    return template === undefined ? null : { template, pathParams };
  }

  /** The schema's method description (`info.<METHOD>`), or null. */
  methodInfo(method: string, template: string): ApiMethodInfo | null {
    return this.#raw.get(`${method} ${template}`)?.info ?? null;
  }

  /** Compile every endpoint now (fills {@linkcode unknownFormats} completely). */
  compileAll(): void {
    for (const key of this.#raw.keys()) this.#endpoint(key);
  }

  #endpoint(key: string): CompiledEndpoint {
    let ep = this.#compiled.get(key);
    if (ep !== undefined) return ep;
    const raw = this.#raw.get(key);
    if (raw === undefined) {
      throw new Error(`No such API endpoint '${key}'`);
    }
    const params = raw.info.parameters;
    let obj: CompiledObject | undefined;
    let topTypeCheck: PropCheck | undefined;
    if (params !== undefined && params !== null && typeof params === "object") {
      if (params.type !== undefined) {
        const tc = compileTypeCheck(params.type, this.#ctx);
        if (tc !== undefined) topTypeCheck = (v, p, e) => void tc(v, p, e);
      }
      if (
        params.properties !== undefined || perlTrue(params.additionalProperties)
      ) {
        obj = compileObject(
          (params.properties ?? {}) as Record<string, JsonSchema>,
          params.additionalProperties,
          this.#ctx,
          true,
        );
      }
    }
    const [method, template] = [key.slice(0, key.indexOf(" ")), raw.template];
    ep = {
      info: raw.info,
      obj,
      topTypeCheck,
      firewallRuleCreate: method === "POST" &&
        (template.endsWith("/firewall/rules") ||
          template === "/cluster/firewall/groups/{group}"),
    };
    this.#compiled.set(key, ep);
    return ep;
  }

  /**
   * The parameters as PVE's handler receives them: `_dc` dropped, path
   * parameters merged (when `options.pathParams` is given), form values as
   * strings, scalars wrapped for `array` parameters and arrays joined with
   * `,` for `-list` string formats. Does not validate (a body value that
   * conflicts with a path parameter simply wins here).
   */
  normalize(
    method: string,
    template: string,
    params: Record<string, ParamValue>,
    options: ValidateOptions = {},
  ): Record<string, ParamValue> {
    const ep = this.#endpoint(`${method} ${template}`);
    const merged = this.#prepare(ep, params, options, false) as Map<
      string,
      unknown
    >;
    return Object.fromEntries(merged) as Record<string, ParamValue>;
  }

  /**
   * Validate request parameters like PVE does before calling the handler.
   * Returns null when valid, else PVE's `errors` map (HTTP 400
   * `Parameter verification failed.`). Throws for an unknown endpoint.
   */
  validate(
    method: string,
    template: string,
    params: Record<string, ParamValue>,
    options: ValidateOptions = {},
  ): ParamErrors | null {
    const ep = this.#endpoint(`${method} ${template}`);
    const merged = this.#prepare(ep, params, options, true);
    if (!(merged instanceof Map)) return merged;
    const errors: Errors = new Map();
    if (ep.topTypeCheck !== undefined) ep.topTypeCheck(params, "", errors);
    if (errors.size === 0 && ep.obj !== undefined) {
      checkObject(ep.obj, "", merged, errors);
    }
    if (errors.size === 0 && options.handlerChecks !== false) {
      if (ep.firewallRuleCreate) firewallRuleChecks(merged, errors);
    }
    return errors.size === 0 ? null : Object.fromEntries(errors);
  }

  /** Build the parameter map, or return the duplicate-parameter error. */
  #prepare(
    ep: CompiledEndpoint,
    params: Record<string, ParamValue>,
    options: ValidateOptions,
    checkDuplicates: boolean,
  ): Map<string, unknown> | ParamErrors {
    const json = options.json === true;
    const body = new Map<string, unknown>();
    for (const k of Object.keys(params)) {
      if (k === "_dc") continue;
      const v = params[k];
      body.set(k, json ? v : formValue(v));
    }
    let merged = body;
    const pathParams = options.pathParams;
    if (pathParams !== undefined) {
      for (const k of checkDuplicates ? [...body.keys()].sort() : []) {
        if (
          Object.hasOwn(pathParams, k) &&
          pathParams[k] !== perlStr(body.get(k))
        ) {
          return Object.fromEntries([[k, MSG_DUPLICATE]]);
        }
      }
      merged = new Map<string, unknown>(Object.entries(pathParams));
      for (const [k, v] of body) merged.set(k, v);
    }
    const obj = ep.obj;
    if (obj !== undefined) {
      for (const [k, v] of merged) {
        const prop = resolveProp(obj, k);
        if (prop === undefined || prop.normalize === Normalize.None) continue;
        if (prop.normalize === Normalize.JoinList) {
          if (Array.isArray(v)) merged.set(k, v.map(perlStr).join(","));
        } else if (perlRef(v) === "" && perlTrue(v)) {
          merged.set(k, [v]);
        }
      }
    }
    return merged;
  }
}

/** Form-encoded values are text: stringify scalars (arrays come from repeated keys). */
function formValue(v: ParamValue): unknown {
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return v.map((e) => formValue(e));
  return v;
}

/**
 * `PVE::Firewall::verify_rule` checks that depend on parameters only and that
 * the schema cannot express (PVE raises on the first one).
 */
function firewallRuleChecks(
  params: Map<string, unknown>,
  errors: Errors,
): void {
  const proto = params.get("proto");
  for (const p of ["dport", "sport"]) {
    if (perlTrue(params.get(p)) && !perlTrue(proto)) {
      addError(
        errors,
        "proto",
        `missing property - '${p}' requires this property`,
      );
      return;
    }
  }
}

/**
 * Load the schema from `path`, else `$PVE_API_SCHEMA`, else
 * `../shared/pve-api/pve-api-schema.json` relative to the working directory.
 * Returns null when the file does not exist; other errors are thrown.
 */
export async function loadApiSchema(path?: string): Promise<ApiSchema | null> {
  const file = path ?? Deno.env.get("PVE_API_SCHEMA") ??
    resolve(Deno.cwd(), "../shared/pve-api/pve-api-schema.json");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  return ApiSchema.fromTree(JSON.parse(text) as ApiTreeNode[]);
}
