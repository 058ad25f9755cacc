// Creates (or updates) a SCRAM-SHA-512 user on an Apache Kafka broker, for scripts/kafka.sh.
//
//   KAFKA_SCRAM_PASSWORD=… java -cp '<kafka>/libs/*' ScramUser.java <bootstrap> <user>
//
// Through the admin API (KIP-554) on the plaintext listener, rather than `StorageTool format
// --add-scram`: credentials added at format time were not accepted by a `--standalone` (dynamic
// quorum) node here, and this also works on a broker formatted earlier. The password comes from
// the environment, so that it never shows in a process list. Run from source by the JDK.
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

public class ScramUser {
    public static void main(String[] args) throws Exception {
        String password = System.getenv("KAFKA_SCRAM_PASSWORD");
        if (password == null || password.isEmpty()) {
            System.err.println("KAFKA_SCRAM_PASSWORD is not set");
            System.exit(2);
        }
        Properties config = new Properties();
        config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        try (Admin admin = Admin.create(config)) {
            ScramCredentialInfo info = new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192);
            admin.alterUserScramCredentials(
                    List.of(new UserScramCredentialUpsertion(args[1], info, password)))
                .all()
                .get(30, TimeUnit.SECONDS);
        }
    }
}
