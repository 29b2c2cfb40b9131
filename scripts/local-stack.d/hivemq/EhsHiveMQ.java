// HiveMQ Community Edition for scripts/local-stack: the embedded broker with the config
// folder, data folder and (empty) extensions folder given as arguments. Compiled and run by
// the script against the jars of hivemq-pom.xml; nothing else uses it.
import com.hivemq.embedded.EmbeddedHiveMQ;
import java.nio.file.Path;

public final class EhsHiveMQ {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: EhsHiveMQ CONFIG_DIR DATA_DIR EXTENSIONS_DIR");
            System.exit(2);
        }
        EmbeddedHiveMQ hivemq = EmbeddedHiveMQ.builder()
                .withConfigurationFolder(Path.of(args[0]))
                .withDataFolder(Path.of(args[1]))
                .withExtensionsFolder(Path.of(args[2]))
                .build();
        // SIGTERM (local-stack stop) shuts the broker down cleanly, so queued messages and
        // persistent sessions are on disk for the next start, as after a pod's graceful stop.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                hivemq.stop().join();
                hivemq.close();
            } catch (Exception e) {
                e.printStackTrace();
            }
        }, "ehs-hivemq-stop"));
        try {
            hivemq.start().join();
        } catch (Exception e) {
            e.printStackTrace();
            System.exit(1);
        }
        System.out.println("ehs-local-stack: HiveMQ started");
        Thread.currentThread().join();
    }
}
