// Brings the broker's topics in line with the manifest (ops/topics), in one JVM:
// creates the missing topics, grows the ones with fewer partitions than listed
// (partitions are never removed), and sets retention.ms / cleanup.policy where
// they differ. Topics the manifest does not list are left alone.
//
//   java -cp '<kafka libs>/*' ops/kafka/CreateTopics.java <bootstrap> <manifest> [<replication> <min_isr>]
//
// With <replication> and <min_isr> (a cluster: ops/stack up --cluster), every topic is
// created with at least that replication factor and min.insync.replicas=<min_isr>, and
// existing topics get that min.insync.replicas.
//
// (Java 17 single-file source launch; ops/stack up runs it.) Manifest lines:
//   name partitions retention_ms cleanup_policy [replication]
// with # comments and blank lines. Exit 0 when every listed topic is as listed,
// 1 on any error (printed), 2 on bad usage or a bad manifest.

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;

public class CreateTopics {
    record Spec(String name, int partitions, long retentionMs, String cleanup, short replication) {}

    private static final Pattern NAME = Pattern.compile("[a-zA-Z0-9._-]{1,249}");
    private static final long TIMEOUT_S = 60;

    public static void main(String[] args) {
        if (args.length != 2 && args.length != 4) {
            System.err.println("usage: java -cp '<kafka libs>/*' CreateTopics.java <bootstrap> <manifest> [<replication> <min_isr>]");
            System.exit(2);
        }
        short minReplication = 1;
        String minIsr = null;
        if (args.length == 4) {
            try {
                minReplication = Short.parseShort(args[2]);
                minIsr = Integer.toString(Integer.parseInt(args[3]));
            } catch (NumberFormatException e) {
                minReplication = 0;
            }
            if (minReplication < 1 || Integer.parseInt(minIsr == null ? "0" : minIsr) < 1
                    || Integer.parseInt(minIsr) > minReplication) {
                System.err.println("topics: replication and min_isr are integers, 1 <= min_isr <= replication");
                System.exit(2);
            }
        }
        List<Spec> specs;
        try {
            specs = parse(Path.of(args[1]));
        } catch (IllegalArgumentException | java.io.IOException e) {
            System.err.println("topics: " + args[1] + ": " + e.getMessage());
            System.exit(2);
            return;
        }
        try {
            System.exit(run(args[0], specs, minReplication, minIsr));
        } catch (ExecutionException e) {
            Throwable c = e.getCause() != null ? e.getCause() : e;
            System.err.println("topics: " + c.getClass().getSimpleName() + ": " + c.getMessage());
        } catch (java.util.concurrent.TimeoutException e) {
            System.err.println("topics: no answer from the broker at " + args[0] + " within " + TIMEOUT_S + " s");
        } catch (Exception e) {
            System.err.println("topics: " + e.getClass().getSimpleName() + ": " + e.getMessage());
        }
        System.exit(1);
    }

    static List<Spec> parse(Path manifest) throws java.io.IOException {
        List<Spec> specs = new ArrayList<>();
        Set<String> seen = new java.util.HashSet<>();
        int lineNo = 0;
        for (String raw : Files.readAllLines(manifest, StandardCharsets.UTF_8)) {
            lineNo++;
            int hash = raw.indexOf('#');
            String line = (hash >= 0 ? raw.substring(0, hash) : raw).trim();
            if (line.isEmpty())
                continue;
            String[] f = line.split("\\s+");
            String where = "line " + lineNo + ": ";
            if (f.length != 4 && f.length != 5)
                throw new IllegalArgumentException(where + "want: name partitions retention_ms cleanup [replication]");
            if (!NAME.matcher(f[0]).matches())
                throw new IllegalArgumentException(where + "bad topic name '" + f[0] + "'");
            if (!seen.add(f[0]))
                throw new IllegalArgumentException(where + "topic '" + f[0] + "' listed twice");
            int partitions;
            long retention;
            short replication = 1;
            try {
                partitions = Integer.parseInt(f[1]);
                retention = Long.parseLong(f[2]);
                if (f.length == 5)
                    replication = Short.parseShort(f[4]);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(where + "partitions, retention_ms and replication are integers");
            }
            if (partitions < 1 || replication < 1 || retention < -1)
                throw new IllegalArgumentException(where + "partitions and replication >= 1, retention_ms >= -1");
            String cleanup = f[3];
            if (!cleanup.matches("delete|compact|compact,delete|delete,compact"))
                throw new IllegalArgumentException(where + "cleanup is delete, compact or compact,delete");
            specs.add(new Spec(f[0], partitions, retention, cleanup, replication));
        }
        if (specs.isEmpty())
            throw new IllegalArgumentException("no topics listed");
        return specs;
    }

    static int run(String bootstrap, List<Spec> specs, short minReplication, String minIsr) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "voxlink-create-topics");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "30000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");

        try (Admin admin = Admin.create(p)) {
            Set<String> existing = admin.listTopics(new ListTopicsOptions().listInternal(false))
                    .names().get(TIMEOUT_S, TimeUnit.SECONDS);

            Map<String, Spec> missing = new LinkedHashMap<>();
            Map<String, Spec> present = new LinkedHashMap<>();
            for (Spec s : specs)
                (existing.contains(s.name()) ? present : missing).put(s.name(), s);

            List<String> created = new ArrayList<>();
            List<String> grown = new ArrayList<>();
            List<String> reconfigured = new ArrayList<>();
            List<String> errors = new ArrayList<>();

            // 1. Create what is missing (a topic created meanwhile by someone else is fine).
            if (!missing.isEmpty()) {
                List<NewTopic> news = new ArrayList<>();
                for (Spec s : missing.values()) {
                    Map<String, String> cfg = new HashMap<>();
                    cfg.put(TopicConfig.RETENTION_MS_CONFIG, Long.toString(s.retentionMs()));
                    cfg.put(TopicConfig.CLEANUP_POLICY_CONFIG, s.cleanup());
                    if (minIsr != null)
                        cfg.put(TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG, minIsr);
                    short rf = (short) Math.max(s.replication(), minReplication);
                    news.add(new NewTopic(s.name(), s.partitions(), rf).configs(cfg));
                }
                CreateTopicsResult r = admin.createTopics(news);
                for (Map.Entry<String, KafkaFuture<Void>> e : r.values().entrySet()) {
                    try {
                        e.getValue().get(TIMEOUT_S, TimeUnit.SECONDS);
                        created.add(e.getKey());
                    } catch (ExecutionException ex) {
                        if (ex.getCause() instanceof TopicExistsException)
                            present.put(e.getKey(), missing.get(e.getKey()));
                        else
                            errors.add("create " + e.getKey() + ": " + ex.getCause().getMessage());
                    }
                }
            }

            // 2. Existing topics: grow partitions, align the two configs we own.
            if (!present.isEmpty()) {
                Map<String, TopicDescription> desc = admin.describeTopics(present.keySet())
                        .allTopicNames().get(TIMEOUT_S, TimeUnit.SECONDS);
                Map<String, NewPartitions> grow = new LinkedHashMap<>();
                for (Spec s : present.values()) {
                    int have = desc.get(s.name()).partitions().size();
                    if (have < s.partitions())
                        grow.put(s.name(), NewPartitions.increaseTo(s.partitions()));
                    else if (have > s.partitions())
                        System.out.println("topics: note: " + s.name() + " has " + have
                                + " partitions, manifest says " + s.partitions() + " (never reduced)");
                }
                if (!grow.isEmpty()) {
                    for (Map.Entry<String, KafkaFuture<Void>> e : admin.createPartitions(grow).values().entrySet()) {
                        try {
                            e.getValue().get(TIMEOUT_S, TimeUnit.SECONDS);
                            grown.add(e.getKey() + "->" + grow.get(e.getKey()).totalCount());
                        } catch (ExecutionException ex) {
                            errors.add("grow " + e.getKey() + ": " + ex.getCause().getMessage());
                        }
                    }
                }

                List<ConfigResource> res = new ArrayList<>();
                for (String n : present.keySet())
                    res.add(new ConfigResource(ConfigResource.Type.TOPIC, n));
                Map<ConfigResource, Config> cfgs = admin.describeConfigs(res).all().get(TIMEOUT_S, TimeUnit.SECONDS);
                Map<ConfigResource, Collection<AlterConfigOp>> alter = new LinkedHashMap<>();
                for (Map.Entry<ConfigResource, Config> e : cfgs.entrySet()) {
                    Spec s = present.get(e.getKey().name());
                    List<AlterConfigOp> ops = new ArrayList<>();
                    want(ops, e.getValue(), TopicConfig.RETENTION_MS_CONFIG, Long.toString(s.retentionMs()));
                    want(ops, e.getValue(), TopicConfig.CLEANUP_POLICY_CONFIG, s.cleanup());
                    if (minIsr != null)
                        want(ops, e.getValue(), TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG, minIsr);
                    if (!ops.isEmpty())
                        alter.put(e.getKey(), ops);
                }
                if (!alter.isEmpty()) {
                    for (Map.Entry<ConfigResource, KafkaFuture<Void>> e : admin.incrementalAlterConfigs(alter).values().entrySet()) {
                        try {
                            e.getValue().get(TIMEOUT_S, TimeUnit.SECONDS);
                            reconfigured.add(e.getKey().name());
                        } catch (ExecutionException ex) {
                            errors.add("configure " + e.getKey().name() + ": " + ex.getCause().getMessage());
                        }
                    }
                }
            }

            List<String> order = specs.stream().map(Spec::name).toList();
            created.sort(java.util.Comparator.comparingInt(order::indexOf));
            int unchanged = specs.size() - created.size() - grown.size() - errors.size();
            StringBuilder sb = new StringBuilder("topics: ").append(specs.size()).append(" in manifest");
            if (!created.isEmpty())
                sb.append(", created ").append(created.size()).append(" ").append(created);
            if (!grown.isEmpty())
                sb.append(", grew ").append(grown);
            if (!reconfigured.isEmpty())
                sb.append(", reconfigured ").append(reconfigured);
            if (created.isEmpty() && grown.isEmpty() && reconfigured.isEmpty() && errors.isEmpty())
                sb.append(", all present (").append(unchanged).append(" unchanged)");
            System.out.println(sb);
            for (String e : errors)
                System.err.println("topics: ERROR " + e);
            return errors.isEmpty() ? 0 : 1;
        }
    }

    private static void want(List<AlterConfigOp> ops, Config have, String key, String value) {
        ConfigEntry e = have.get(key);
        if (e == null || !value.equals(e.value()))
            ops.add(new AlterConfigOp(new ConfigEntry(key, value), AlterConfigOp.OpType.SET));
    }
}
