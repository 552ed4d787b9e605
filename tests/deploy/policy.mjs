// Checks what deploy/kubernetes promises beyond the schema, on the rendered
// manifests of one overlay: the restrictive securityContext, resources,
// native gRPC probes, termination grace above the daemons' shutdown grace,
// the model volume, the presets ConfigMap, and each topology's own pieces
// (sidecar: /dev/shm of medium Memory shared by both containers as one uid;
// split: headless Service, dns:/// target, HPA, PDBs, NetworkPolicy; gpu:
// one nvidia.com/gpu and the CUDA image).
//
//   node policy.mjs TOPOLOGY:FILE.yaml...     TOPOLOGY: base, sidecar, split, gpu
import fs from 'node:fs';
import YAML from 'yaml';

const pairs = process.argv.slice(2).map(a => a.split(/:(.*)/s).slice(0, 2));
if (!pairs.length || pairs.some(([t, f]) => !['base', 'sidecar', 'split', 'gpu'].includes(t) || !f)) {
  console.error('usage: node policy.mjs base|sidecar|split|gpu:FILE.yaml...');
  process.exit(2);
}
let failed = 0;
for (const [topology, file] of pairs) {
  if (!check(topology, file)) failed++;
}
process.exit(failed ? 1 : 0);

function check(topology, file) {
const objects = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8')).map(d => d.toJS()).filter(Boolean);
const errors = [];
const expect = (cond, what) => { if (!cond) errors.push(what); };
const find = (kind, name) => objects.find(o => o.kind === kind && o.metadata.name === name);
const envOf = c => Object.fromEntries((c.env || []).map(e => [e.name, e.value ?? e.valueFrom]));
// A flag's value: from args (--name=value) or, through --tryfromenv, FLAGS_name.
function flag(c, name) {
  for (const a of c.args || []) if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  const tryfromenv = (c.args || []).find(a => a.startsWith('--tryfromenv='));
  if (tryfromenv && tryfromenv.split('=')[1].split(',').includes(name)) return envOf(c)[`FLAGS_${name}`];
  return undefined;
}

const deployments = objects.filter(o => o.kind === 'Deployment');
expect(deployments.length > 0, 'no Deployment');
for (const d of deployments) {
  const name = `Deployment/${d.metadata.name}`;
  const pod = d.spec.template.spec;
  const psc = pod.securityContext || {};
  expect(psc.runAsNonRoot === true, `${name}: pod runAsNonRoot`);
  expect(psc.seccompProfile && psc.seccompProfile.type === 'RuntimeDefault', `${name}: pod seccomp RuntimeDefault`);
  expect(pod.automountServiceAccountToken === false, `${name}: automountServiceAccountToken false`);
  for (const c of [...(pod.initContainers || []), ...pod.containers]) {
    const where = `${name} container ${c.name}`;
    const sc = c.securityContext || {};
    expect(sc.allowPrivilegeEscalation === false, `${where}: allowPrivilegeEscalation false`);
    expect(sc.readOnlyRootFilesystem === true, `${where}: readOnlyRootFilesystem`);
    expect(sc.runAsNonRoot === true, `${where}: runAsNonRoot`);
    expect(sc.capabilities && (sc.capabilities.drop || []).includes('ALL') && !sc.capabilities.add,
           `${where}: capabilities drop ALL, none added`);
    expect(sc.seccompProfile && sc.seccompProfile.type === 'RuntimeDefault', `${where}: seccomp RuntimeDefault`);
    for (const kind of ['requests', 'limits']) {
      const r = (c.resources || {})[kind] || {};
      expect(r.cpu && r.memory, `${where}: resources.${kind} cpu and memory`);
    }
    expect(/:[\w.-]+$/.test(c.image) && !c.image.endsWith(':latest'), `${where}: image with a tag, not latest (${c.image})`);
  }
  for (const c of pod.containers) {
    const where = `${name} container ${c.name}`;
    // A FLAGS_ variable that --tryfromenv does not name would be ignored.
    const listed = ((c.args || []).find(a => a.startsWith('--tryfromenv=')) || '=').split('=')[1].split(',');
    for (const e of c.env || []) {
      if (e.name.startsWith('FLAGS_')) {
        expect(listed.includes(e.name.slice(6)), `${where}: ${e.name} is not in --tryfromenv, so it would be ignored`);
      }
    }
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      expect(c[probe] && c[probe].grpc && c[probe].grpc.port, `${where}: native gRPC ${probe}`);
    }
    const grace = Number(flag(c, 'shutdown_grace_s') ?? 10);
    const preStop = c.lifecycle && c.lifecycle.preStop && c.lifecycle.preStop.exec
      ? Number(c.lifecycle.preStop.exec.command.at(-1)) || 0 : 0;
    // runnerd: + 5 s for the last messages of cancelled streams.
    const needed = preStop + grace + (c.name === 'runnerd' ? 5 : 0);
    expect((pod.terminationGracePeriodSeconds ?? 30) > needed,
           `${where}: terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} <= ${needed} (preStop + --shutdown_grace_s)`);
  }
}

const runnerd = find('Deployment', 'runnerd');
expect(runnerd, 'no Deployment/runnerd');
if (runnerd) {
  const pod = runnerd.spec.template.spec;
  const rc = pod.containers.find(c => c.name === 'runnerd');
  const mounts = Object.fromEntries((rc.volumeMounts || []).map(m => [m.mountPath, m.name]));
  const volumes = Object.fromEntries((pod.volumes || []).map(v => [v.name, v]));
  const modelDir = flag(rc, 'model');
  const modelVolume = volumes[mounts['/models']];
  expect(modelDir && modelDir.startsWith('/models'), `runnerd --model under /models (${modelDir})`);
  expect(modelVolume && (modelVolume.persistentVolumeClaim ||
         (modelVolume.emptyDir && (pod.initContainers || []).some(i => (i.volumeMounts || []).some(m => m.name === modelVolume.name)))),
         'runnerd: the model from a volume (a PVC, or an emptyDir an init container fills)');
  const presets = volumes[mounts['/etc/entroserve/presets']];
  expect(presets && presets.configMap && objects.some(o => o.kind === 'ConfigMap' && o.metadata.name === presets.configMap.name &&
         o.data && o.data['entropix-tiny.txtpb']), 'runnerd: the sampler presets ConfigMap mounted');
  expect(find('Service', 'runnerd'), 'Service/runnerd');
  expect(find('PodDisruptionBudget', 'runnerd'), 'PodDisruptionBudget/runnerd');
  const np = find('NetworkPolicy', 'runnerd');
  expect(np && (np.spec.ingress || []).every(r => (r.ports || []).every(p => p.port !== 50051 && p.port !== 'sampler-grpc')),
         'NetworkPolicy/runnerd admits nothing to samplerd\'s port');

  if (topology === 'sidecar' || topology === 'gpu') {
    const sc = pod.containers.find(c => c.name === 'samplerd');
    expect(sc, 'sidecar: a samplerd container in runnerd\'s Pod');
    const dshm = (pod.volumes || []).find(v => v.name === 'dshm');
    expect(dshm && dshm.emptyDir && dshm.emptyDir.medium === 'Memory' && dshm.emptyDir.sizeLimit,
           'sidecar: /dev/shm an emptyDir of medium Memory with a sizeLimit');
    for (const c of [rc, sc].filter(Boolean)) {
      expect((c.volumeMounts || []).some(m => m.name === 'dshm' && m.mountPath === '/dev/shm'), `sidecar: ${c.name} mounts dshm at /dev/shm`);
      const uid = (c.securityContext || {}).runAsUser ?? (pod.securityContext || {}).runAsUser;
      expect(uid === 10001, `sidecar: ${c.name} runs as uid 10001 (shared memory needs one user), got ${uid}`);
    }
    expect(/^(127\.0\.0\.1|localhost|\[::1\]):/.test(flag(rc, 'sampler')), `sidecar: runnerd --sampler on loopback (${flag(rc, 'sampler')})`);
    expect(flag(rc, 'sampler_transport') === 'shared_memory', 'sidecar: runnerd --sampler_transport=shared_memory');
    if (sc) expect(flag(sc, 'shared_memory') === 'true', 'sidecar: samplerd --shared_memory=true');
    const wait = sc && sc.lifecycle && sc.lifecycle.preStop && sc.lifecycle.preStop.exec &&
      sc.lifecycle.preStop.exec.command.join(' ');
    expect(wait && wait.includes(':C383') && wait.includes('/proc/net/tcp'),
           'sidecar: samplerd\'s preStop waits while runnerd\'s connections to 50051 are open');
  }
  if (topology === 'split') {
    const sd = find('Deployment', 'samplerd');
    expect(sd && sd.spec.replicas >= 3, 'split: samplerd Deployment of 3+ replicas');
    const svc = find('Service', 'samplerd-headless');
    expect(svc && svc.spec.clusterIP === 'None', 'split: samplerd-headless is headless (clusterIP None)');
    expect(flag(rc, 'sampler') === 'dns:///samplerd-headless:50051', `split: runnerd --sampler=dns:///samplerd-headless:50051 (${flag(rc, 'sampler')})`);
    const hpa = find('HorizontalPodAutoscaler', 'samplerd');
    expect(hpa && hpa.spec.scaleTargetRef.name === 'samplerd' &&
           hpa.spec.metrics.some(m => m.resource && m.resource.name === 'cpu'), 'split: HPA on samplerd\'s CPU');
    expect(find('PodDisruptionBudget', 'samplerd'), 'split: PodDisruptionBudget/samplerd');
    const np = find('NetworkPolicy', 'samplerd');
    expect(np && np.spec.podSelector.matchLabels['app.kubernetes.io/name'] === 'samplerd' &&
           np.spec.ingress.length === 1 &&
           np.spec.ingress[0].from.every(f => f.podSelector && f.podSelector.matchLabels['app.kubernetes.io/name'] === 'runnerd' &&
                                              !f.namespaceSelector),
           'split: NetworkPolicy admits only runnerd\'s Pods to samplerd');
    if (sd) {
      const sc = sd.spec.template.spec.containers[0];
      expect(flag(sc, 'shared_memory') === 'false', 'split: samplerd --shared_memory=false');
    }
  }
  if (topology === 'gpu') {
    const limits = (rc.resources || {}).limits || {};
    expect(String(limits['nvidia.com/gpu']) === '1', 'gpu: runnerd limits nvidia.com/gpu: 1');
    expect(/runnerd-cuda:/.test(rc.image), `gpu: the CUDA image (${rc.image})`);
    expect(flag(rc, 'device') === 'cuda', 'gpu: --device=cuda');
  }
}

if (errors.length) {
  for (const e of errors) console.log(`${file}: ${e}`);
  return false;
}
console.log(`    ${file.split('/').at(-1).padEnd(55)} ${topology}: every check holds`);
return true;
}
