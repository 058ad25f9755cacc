// Waits until an Apache Kafka broker answers a metadata request, for scripts/kafka.sh.
//
//   java -cp '<kafka>/libs/*' Ready.java <bootstrap> <timeout seconds>
//
// Exits 0 once the broker lists its topics (a Metadata request answered, not just an open port),
// 1 when the timeout passes first. Run from source by the JDK's launcher: nothing to build.
import java.time.Duration;
import java.time.Instant;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListTopicsOptions;

public class Ready {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        Instant deadline = Instant.now().plusSeconds(Long.parseLong(args[1]));
        Properties config = new Properties();
        config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        config.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        config.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "2000");
        config.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "200");
        try (Admin admin = Admin.create(config)) {
            String last = "no answer";
            while (Instant.now().isBefore(deadline)) {
                try {
                    admin.listTopics(new ListTopicsOptions().timeoutMs(2000))
                        .names()
                        .get(3, TimeUnit.SECONDS);
                    System.exit(0);
                } catch (Exception error) {
                    last = error.getMessage();
                    Thread.sleep(200);
                }
            }
            System.err.println("no metadata from " + bootstrap + ": " + last);
            admin.close(Duration.ZERO);
            System.exit(1);
        }
    }
}
