// What the UI knows about each resource type: its REST collection, list columns, filters,
// the create wizard, and the actions the API allows in a given state. Everything else
// (list, detail, wizard views) is generic over these definitions.

import { bytes } from "./dom.js";

const GIB = 1024 ** 3;
const actionsPath = (r, inv) => `${r.path}/${inv.uuid}/actions`;

// Field names that hold another resource's UUID, and which resource that is.
export const REFERENCES = {
  zoneUuid: "zones", clusterUuid: "clusters", hostUuid: "hosts", lastHostUuid: "hosts",
  imageUuid: "images", rootImageUuid: "images", instanceOfferingUuid: "instance-offerings",
  diskOfferingUuid: "disk-offerings", rootVolumeUuid: "volumes", volumeUuid: "volumes",
  l3NetworkUuid: "l3-networks", defaultL3NetworkUuid: "l3-networks",
  l2NetworkUuid: "l2-networks", primaryStorageUuid: "primary-storage",
  backupStorageUuid: "backup-storage", vmInstanceUuid: "vm-instances",
  lastVmInstanceUuid: "vm-instances",
};

const name = { field: "name", label: "Name", link: true };
const state = { field: "state", label: "State", badge: true };
const status = { field: "status", label: "Status", badge: true };
const created = { field: "createDate", label: "Created", sortOnly: false };

const enableDisable = (r) => (inv) => [
  inv.state === "Enabled"
    ? { label: "Disable", method: "PUT", path: actionsPath(r, inv), key: r.stateAction, body: { stateEvent: "disable" } }
    : { label: "Enable", method: "PUT", path: actionsPath(r, inv), key: r.stateAction, body: { stateEvent: "enable" } },
];

const remove = (r, inv) => ({
  label: "Delete", method: "DELETE", path: `${r.path}/${inv.uuid}`, confirm: `Delete ${inv.name || inv.uuid}?`,
  destructive: true,
});

export const RESOURCES = [
  {
    key: "zones", title: "Zones", noun: "zone", path: "/zones", vo: "ZoneVO",
    columns: [name, state, { field: "description", label: "Description" }, created],
    filters: [{ field: "state", options: ["Enabled", "Disabled"] }],
    stateAction: "changeZoneState",
    create: {
      steps: [{ title: "Zone", fields: [
        { name: "name", label: "Name", required: true },
        { name: "description", label: "Description" },
      ] }],
      submit: async (v, run) => run(`Create zone ${v.name}`, "POST", "/zones", { params: v }),
    },
    actions(inv) { return [...enableDisable(this)(inv), remove(this, inv)]; },
    related: (inv) => [
      { title: "Clusters", resource: "clusters", q: [`zoneUuid=${inv.uuid}`] },
      { title: "Hosts", resource: "hosts", q: [`zoneUuid=${inv.uuid}`] },
    ],
  },
  {
    key: "clusters", title: "Clusters", noun: "cluster", path: "/clusters", vo: "ClusterVO",
    columns: [name, state, { field: "hypervisorType", label: "Hypervisor" }, { field: "zoneUuid", label: "Zone" }, created],
    filters: [{ field: "state", options: ["Enabled", "Disabled"] }],
    stateAction: "changeClusterState",
    create: {
      steps: [{ title: "Cluster", fields: [
        { name: "name", label: "Name", required: true },
        { name: "zoneUuid", label: "Zone", ref: "zones", required: true },
        { name: "hypervisorType", label: "Hypervisor", options: ["KVM"], value: "KVM" },
      ] }],
      submit: async (v, run) => run(`Create cluster ${v.name}`, "POST", "/clusters", { params: v }),
    },
    actions(inv) { return [...enableDisable(this)(inv), remove(this, inv)]; },
    related: (inv) => [
      { title: "Hosts", resource: "hosts", q: [`clusterUuid=${inv.uuid}`] },
      { title: "VMs", resource: "vm-instances", q: [`clusterUuid=${inv.uuid}`] },
    ],
  },
  {
    key: "hosts", title: "Hosts", noun: "host", path: "/hosts", vo: "HostVO",
    columns: [name, { field: "managementIp", label: "Management IP" }, state, status,
      { field: "availableCpuCapacity", label: "Free CPU" },
      { field: "availableMemoryCapacity", label: "Free memory", format: bytes }, created],
    filters: [
      { field: "state", options: ["Enabled", "Disabled", "PreMaintenance", "Maintenance"] },
      { field: "status", options: ["Connected", "Connecting", "Disconnected"] },
    ],
    create: {
      steps: [{ title: "KVM host", fields: [
        { name: "name", label: "Name", required: true },
        { name: "managementIp", label: "Management IP", required: true },
        { name: "clusterUuid", label: "Cluster", ref: "clusters", required: true },
        { name: "username", label: "SSH user", value: "root", required: true },
        { name: "password", label: "SSH password", type: "password", required: true },
      ] }],
      submit: async (v, run) => run(`Add host ${v.name}`, "POST", "/hosts/kvm", { params: v }),
    },
    actions(inv) {
      const path = actionsPath(this, inv);
      return [
        { label: "Reconnect", method: "PUT", path, key: "reconnectHost", body: {} },
        inv.state === "Enabled"
          ? { label: "Disable", method: "PUT", path, key: "changeHostState", body: { stateEvent: "disable" } }
          : { label: "Enable", method: "PUT", path, key: "changeHostState", body: { stateEvent: "enable" } },
        { label: "Maintain", method: "PUT", path, key: "changeHostState", body: { stateEvent: "maintain" },
          confirm: `Put ${inv.name} in maintenance? Its VMs are migrated or stopped.`, destructive: true },
        remove(this, inv),
      ];
    },
    related: (inv) => [{ title: "VMs", resource: "vm-instances", q: [`hostUuid=${inv.uuid}`] }],
  },
  {
    key: "primary-storage", title: "Primary storage", noun: "primary storage", path: "/primary-storage", vo: "PrimaryStorageVO",
    columns: [name, { field: "type", label: "Type" }, state, status,
      { field: "availableCapacity", label: "Free", format: bytes },
      { field: "totalCapacity", label: "Total", format: bytes }, created],
    filters: [{ field: "status", options: ["Connected", "Disconnected"] }, { field: "type", options: ["LocalStorage", "NFS"] }],
    create: {
      steps: [
        { title: "Storage", fields: [
          { name: "name", label: "Name", required: true },
          { name: "kind", label: "Type", options: ["local-storage", "nfs"], value: "local-storage" },
          { name: "url", label: "URL (a path, or host:/export for NFS)", required: true },
          { name: "zoneUuid", label: "Zone", ref: "zones", required: true },
        ] },
        { title: "Attach", fields: [{ name: "clusterUuid", label: "Attach to cluster", ref: "clusters", optional: true }] },
      ],
      submit: async ({ kind, clusterUuid, ...v }, run) => {
        const made = await run(`Add primary storage ${v.name}`, "POST", `/primary-storage/${kind}`, { params: v });
        if (clusterUuid) {
          await run(`Attach ${v.name} to cluster`, "POST", `/clusters/${clusterUuid}/primary-storage/${made.inventory.uuid}`, { params: {} });
        }
        return made;
      },
    },
    actions(inv) {
      return [
        { label: "Reconnect", method: "PUT", path: actionsPath(this, inv), key: "reconnectPrimaryStorage", body: {} },
        { label: "Attach to cluster", method: "POST", pick: { resource: "clusters", label: "Cluster" },
          path: (c) => `/clusters/${c}/primary-storage/${inv.uuid}`, body: { params: {} } },
        remove(this, inv),
      ];
    },
    related: (inv) => [{ title: "Volumes", resource: "volumes", q: [`primaryStorageUuid=${inv.uuid}`] }],
  },
  {
    key: "backup-storage", title: "Backup storage", noun: "backup storage", path: "/backup-storage", vo: "BackupStorageVO",
    columns: [name, { field: "type", label: "Type" }, state, status,
      { field: "availableCapacity", label: "Free", format: bytes }, created],
    filters: [{ field: "status", options: ["Connected", "Disconnected"] }],
    create: {
      steps: [
        { title: "SFTP backup storage", fields: [
          { name: "name", label: "Name", required: true },
          { name: "hostname", label: "Host name or IP", required: true },
          { name: "url", label: "Path", value: "/bs", required: true },
          { name: "username", label: "SSH user", value: "root", required: true },
          { name: "password", label: "SSH password", type: "password", required: true },
        ] },
        { title: "Attach", fields: [{ name: "zoneUuid", label: "Attach to zone", ref: "zones", optional: true }] },
      ],
      submit: async ({ zoneUuid, ...v }, run) => {
        const made = await run(`Add backup storage ${v.name}`, "POST", "/backup-storage/sftp", { params: v });
        if (zoneUuid) {
          await run(`Attach ${v.name} to zone`, "POST", `/zones/${zoneUuid}/backup-storage/${made.inventory.uuid}`, { params: {} });
        }
        return made;
      },
    },
    actions(inv) {
      return [
        { label: "Reconnect", method: "PUT", path: actionsPath(this, inv), key: "reconnectBackupStorage", body: {} },
        { label: "Attach to zone", method: "POST", pick: { resource: "zones", label: "Zone" },
          path: (z) => `/zones/${z}/backup-storage/${inv.uuid}`, body: { params: {} } },
        remove(this, inv),
      ];
    },
    related: (inv) => [{ title: "Images", resource: "images", q: [`backupStorageRefs.backupStorageUuid=${inv.uuid}`] }],
  },
  {
    key: "images", title: "Images", noun: "image", path: "/images", vo: "ImageVO",
    columns: [name, { field: "format", label: "Format" }, { field: "mediaType", label: "Type" }, state, status,
      { field: "size", label: "Size", format: bytes }, created],
    filters: [{ field: "status", options: ["Ready", "Downloading", "Deleted"] }, { field: "format", options: ["qcow2", "raw", "iso"] }],
    stateAction: "changeImageState",
    create: {
      steps: [{ title: "Image", fields: [
        { name: "name", label: "Name", required: true },
        { name: "url", label: "URL", required: true },
        { name: "format", label: "Format", options: ["qcow2", "raw", "iso"], value: "qcow2" },
        { name: "mediaType", label: "Media type", options: ["RootVolumeTemplate", "DataVolumeTemplate", "ISO"], value: "RootVolumeTemplate" },
        { name: "platform", label: "Platform", options: ["Linux", "Windows", "Other"], value: "Linux" },
        { name: "backupStorageUuids", label: "Backup storage", ref: "backup-storage", multiple: true, required: true },
      ] }],
      submit: async (v, run) => run(`Add image ${v.name}`, "POST", "/images", { params: v }),
    },
    actions(inv) { return [...enableDisable(this)(inv), remove(this, inv)]; },
    related: (inv) => [{ title: "VMs", resource: "vm-instances", q: [`imageUuid=${inv.uuid}`] }],
  },
  {
    key: "l2-networks", title: "L2 networks", noun: "L2 network", path: "/l2-networks", vo: "L2NetworkVO",
    columns: [name, { field: "type", label: "Type" }, { field: "physicalInterface", label: "Interface" },
      { field: "zoneUuid", label: "Zone" }, created],
    filters: [{ field: "type", options: ["L2NoVlanNetwork", "L2VlanNetwork"] }],
    create: {
      steps: [
        { title: "L2 network", fields: [
          { name: "name", label: "Name", required: true },
          { name: "zoneUuid", label: "Zone", ref: "zones", required: true },
          { name: "physicalInterface", label: "Physical interface", value: "eth0", required: true },
          { name: "vlan", label: "VLAN (empty: no VLAN)", type: "number", optional: true },
        ] },
        { title: "Attach", fields: [{ name: "clusterUuid", label: "Attach to cluster", ref: "clusters", optional: true }] },
      ],
      submit: async ({ clusterUuid, vlan, ...v }, run) => {
        const kind = vlan ? "vlan" : "no-vlan";
        const params = vlan ? { ...v, vlan: Number(vlan) } : v;
        const made = await run(`Create L2 ${v.name}`, "POST", `/l2-networks/${kind}`, { params });
        if (clusterUuid) {
          await run(`Attach ${v.name} to cluster`, "POST", `/l2-networks/${made.inventory.uuid}/clusters/${clusterUuid}`, {});
        }
        return made;
      },
    },
    actions(inv) {
      return [
        { label: "Attach to cluster", method: "POST", pick: { resource: "clusters", label: "Cluster" },
          path: (c) => `/l2-networks/${inv.uuid}/clusters/${c}`, body: {} },
        remove(this, inv),
      ];
    },
    related: (inv) => [{ title: "L3 networks", resource: "l3-networks", q: [`l2NetworkUuid=${inv.uuid}`] }],
  },
  {
    key: "l3-networks", title: "L3 networks", noun: "L3 network", path: "/l3-networks", vo: "L3NetworkVO",
    columns: [name, { field: "category", label: "Category" }, state,
      { field: "ipRanges", label: "IP ranges", format: (rs) => (rs || []).map((r) => r.networkCidr || `${r.startIp}-${r.endIp}`).join(", "), noSort: true },
      { field: "l2NetworkUuid", label: "L2" }, created],
    filters: [{ field: "category", options: ["Private", "Public", "System"] }],
    stateAction: "changeL3NetworkState",
    create: {
      steps: [
        { title: "L3 network", fields: [
          { name: "name", label: "Name", required: true },
          { name: "l2NetworkUuid", label: "L2 network", ref: "l2-networks", required: true },
          { name: "category", label: "Category", options: ["Private", "Public"], value: "Private" },
        ] },
        { title: "IP range", fields: [
          { name: "networkCidr", label: "Network CIDR (e.g. 192.168.1.0/24)", optional: true },
        ] },
      ],
      submit: async ({ networkCidr, ...v }, run) => {
        const made = await run(`Create L3 ${v.name}`, "POST", "/l3-networks", { params: v });
        if (networkCidr) {
          await run(`Add IP range ${networkCidr}`, "POST", `/l3-networks/${made.inventory.uuid}/ip-ranges/by-cidr`,
            { params: { name: `${v.name}-range`, networkCidr } });
        }
        return made;
      },
    },
    actions(inv) {
      return [
        ...enableDisable(this)(inv),
        { label: "Add IP range", method: "POST", ask: { name: "networkCidr", label: "Network CIDR" },
          path: () => `/l3-networks/${inv.uuid}/ip-ranges/by-cidr`,
          body: (cidr) => ({ params: { name: `${inv.name}-${cidr}`, networkCidr: cidr } }) },
        remove(this, inv),
      ];
    },
    related: (inv) => [{ title: "NICs", resource: "vm-nics", q: [`l3NetworkUuid=${inv.uuid}`] }],
  },
  {
    key: "instance-offerings", title: "Instance offerings", noun: "instance offering", path: "/instance-offerings", vo: "InstanceOfferingVO",
    columns: [name, { field: "cpuNum", label: "CPUs" }, { field: "memorySize", label: "Memory", format: bytes }, state, created],
    filters: [{ field: "state", options: ["Enabled", "Disabled"] }],
    stateAction: "changeInstanceOfferingState",
    create: {
      steps: [{ title: "Instance offering", fields: [
        { name: "name", label: "Name", required: true },
        { name: "cpuNum", label: "CPUs", type: "number", value: "1", required: true },
        { name: "memoryGiB", label: "Memory (GiB)", type: "number", value: "1", required: true },
      ] }],
      submit: async ({ memoryGiB, cpuNum, ...v }, run) => run(`Create offering ${v.name}`, "POST", "/instance-offerings",
        { params: { ...v, cpuNum: Number(cpuNum), memorySize: Math.round(Number(memoryGiB) * GIB) } }),
    },
    actions(inv) { return [...enableDisable(this)(inv), remove(this, inv)]; },
    related: (inv) => [{ title: "VMs", resource: "vm-instances", q: [`instanceOfferingUuid=${inv.uuid}`] }],
  },
  {
    key: "disk-offerings", title: "Disk offerings", noun: "disk offering", path: "/disk-offerings", vo: "DiskOfferingVO",
    columns: [name, { field: "diskSize", label: "Size", format: bytes }, state, created],
    filters: [{ field: "state", options: ["Enabled", "Disabled"] }],
    stateAction: "changeDiskOfferingState",
    create: {
      steps: [{ title: "Disk offering", fields: [
        { name: "name", label: "Name", required: true },
        { name: "sizeGiB", label: "Size (GiB)", type: "number", value: "10", required: true },
      ] }],
      submit: async ({ sizeGiB, ...v }, run) => run(`Create disk offering ${v.name}`, "POST", "/disk-offerings",
        { params: { ...v, diskSize: Math.round(Number(sizeGiB) * GIB) } }),
    },
    actions(inv) { return [...enableDisable(this)(inv), remove(this, inv)]; },
    related: (inv) => [{ title: "Volumes", resource: "volumes", q: [`diskOfferingUuid=${inv.uuid}`] }],
  },
  {
    key: "vm-instances", title: "VMs", noun: "VM", path: "/vm-instances", vo: "VmInstanceVO",
    columns: [name, state, { field: "cpuNum", label: "CPUs" }, { field: "memorySize", label: "Memory", format: bytes },
      { field: "vmNics", label: "IP", format: (nics) => (nics || []).map((n) => n.ip).join(", "), noSort: true },
      { field: "hostUuid", label: "Host" }, created],
    filters: [{ field: "state", options: ["Running", "Stopped", "Starting", "Stopping", "Paused", "Migrating", "Destroyed", "Crashed", "Unknown"] }],
    create: {
      steps: [
        { title: "Image", fields: [
          { name: "name", label: "Name", required: true },
          { name: "imageUuid", label: "Image", ref: "images", refQuery: ["status=Ready", "mediaType!=DataVolumeTemplate"], required: true },
        ] },
        { title: "Offering", fields: [
          { name: "instanceOfferingUuid", label: "Instance offering", ref: "instance-offerings", required: true },
          { name: "dataDiskOfferingUuids", label: "Data disks", ref: "disk-offerings", multiple: true, optional: true },
        ] },
        { title: "Networks", fields: [
          { name: "l3NetworkUuids", label: "L3 networks", ref: "l3-networks", multiple: true, required: true },
        ] },
        { title: "Placement", fields: [
          { name: "zoneUuid", label: "Zone (any)", ref: "zones", optional: true },
          { name: "clusterUuid", label: "Cluster (any)", ref: "clusters", optional: true },
          { name: "hostUuid", label: "Host (any)", ref: "hosts", refQuery: ["status=Connected"], optional: true },
        ] },
      ],
      submit: async (v, run) => run(`Create VM ${v.name}`, "POST", "/vm-instances", { params: v }),
    },
    actions(inv) {
      const path = actionsPath(this, inv);
      const act = (label, key, extra = {}) => ({ label, method: "PUT", path, key, body: {}, ...extra });
      const out = [];
      const s = inv.state;
      if (s === "Stopped") out.push(act("Start", "startVmInstance"));
      if (["Running", "Paused", "Unknown", "Crashed"].includes(s)) {
        out.push(act("Stop", "stopVmInstance", { confirm: `Stop ${inv.name}?`, destructive: true }));
      }
      if (s === "Running") {
        out.push(act("Reboot", "rebootVmInstance", { confirm: `Reboot ${inv.name}?`, destructive: true }));
        out.push(act("Pause", "pauseVmInstance"));
        out.push({ label: "Migrate", method: "PUT", path, key: "migrateVm",
          pick: { source: `/vm-instances/${inv.uuid}/migration-target-hosts`, label: "Target host", field: "hostUuid" } });
      }
      if (s === "Paused") out.push(act("Resume", "resumeVmInstance"));
      if (["Running", "Stopped"].includes(s)) {
        out.push({ label: "Attach volume", method: "POST",
          pick: { resource: "volumes", label: "Data volume", q: ["type=Data", "status?=Ready,NotInstantiated", "vmInstanceUuid is null"] },
          path: (vol) => `/volumes/${vol}/vm-instances/${inv.uuid}`, body: { params: {} } });
      }
      if (s === "Destroyed") {
        out.push(act("Recover", "recoverVmInstance"));
        out.push(act("Expunge", "expungeVmInstance", { confirm: `Expunge ${inv.name}? This cannot be undone.`, destructive: true }));
      } else {
        out.push({ label: "Destroy", method: "DELETE", path: `/vm-instances/${inv.uuid}`,
          confirm: `Destroy ${inv.name}?`, destructive: true });
      }
      return out;
    },
    related: (inv) => [
      ...(inv.hostUuid ? [{ title: "Host", resource: "hosts", q: [`uuid=${inv.hostUuid}`] }] : []),
      { title: "NICs", resource: "vm-nics", q: [`vmInstanceUuid=${inv.uuid}`] },
      { title: "Volumes", resource: "volumes", q: [`vmInstanceUuid=${inv.uuid}`] },
    ],
  },
  {
    key: "volumes", title: "Volumes", noun: "volume", path: "/volumes", vo: "VolumeVO",
    columns: [name, { field: "type", label: "Type" }, state, status, { field: "size", label: "Size", format: bytes },
      { field: "vmInstanceUuid", label: "VM" }, created],
    filters: [{ field: "type", options: ["Root", "Data"] }, { field: "status", options: ["Ready", "NotInstantiated", "Deleted"] }],
    stateAction: "changeVolumeState",
    create: {
      steps: [{ title: "Data volume", fields: [
        { name: "name", label: "Name", required: true },
        { name: "diskOfferingUuid", label: "Disk offering", ref: "disk-offerings", required: true },
      ] }],
      submit: async (v, run) => run(`Create volume ${v.name}`, "POST", "/volumes/data", { params: v }),
    },
    actions(inv) {
      const out = [];
      if (inv.type === "Data" && inv.vmInstanceUuid) {
        out.push({ label: "Detach", method: "DELETE", path: `/volumes/${inv.uuid}/vm-instances`,
          confirm: `Detach ${inv.name} from its VM?`, destructive: true });
      }
      if (inv.type === "Data" && !inv.vmInstanceUuid) {
        out.push({ label: "Attach to VM", method: "POST",
          pick: { source: `/volumes/${inv.uuid}/candidate-vm-instances`, label: "VM" },
          path: (vm) => `/volumes/${inv.uuid}/vm-instances/${vm}`, body: { params: {} } });
      }
      out.push({ label: "Snapshot", method: "POST", ask: { name: "name", label: "Snapshot name" },
        path: () => `/volumes/${inv.uuid}/volume-snapshots`, body: (n) => ({ params: { name: n } }) });
      if (inv.type === "Data") out.push(remove(this, inv));
      return out;
    },
    related: (inv) => [{ title: "Snapshots", resource: "volume-snapshots", q: [`volumeUuid=${inv.uuid}`] }],
  },
  {
    key: "volume-snapshots", title: "Snapshots", noun: "snapshot", path: "/volume-snapshots", vo: "VolumeSnapshotVO",
    columns: [name, { field: "volumeType", label: "Volume type" }, state, status, { field: "volumeUuid", label: "Volume" }, created],
    filters: [{ field: "status", options: ["Ready", "Creating", "Deleting"] }],
    actions(inv) {
      return [
        { label: "Revert volume", method: "PUT", path: `/volume-snapshots/${inv.uuid}/actions`, key: "revertVolumeFromSnapshot",
          body: {}, confirm: `Revert the volume to ${inv.name}? Its current content is lost.`, destructive: true },
        remove(this, inv),
      ];
    },
    related: () => [],
  },
  {
    key: "vm-nics", title: "NICs", noun: "NIC", path: "/vm-instances/nics", vo: "VmNicVO", hidden: true,
    columns: [{ field: "ip", label: "IP" }, { field: "mac", label: "MAC" }, { field: "vmInstanceUuid", label: "VM" },
      { field: "l3NetworkUuid", label: "L3" }, { field: "deviceId", label: "Device" }],
    filters: [],
    search: "ip",
    actions: () => [],
    related: () => [],
  },
];

export const BY_KEY = Object.fromEntries(RESOURCES.map((r) => [r.key, r]));
