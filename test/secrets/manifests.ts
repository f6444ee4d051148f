/** A Kubernetes Service `<name>.cache` with one `tcp-redis` port, as a YAML document (no `---`). */
export function redisServiceYaml(clusterIP: string, name = 'redis'): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: cache}
spec:
  clusterIP: ${clusterIP}
  selector: {app: ${name}}
  ports: [{name: tcp-redis, port: 6379, targetPort: 6379}]`;
}
