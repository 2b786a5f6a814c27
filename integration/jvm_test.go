package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The JVM side of the integration tests: Apache Kafka's broker and tools
// (integration/jvm/kafka) and the Java client suite run from Maven
// projects. Maven downloads the jars into its usual local repository on
// first use; nothing is committed.

var classpaths struct {
	sync.Mutex
	byKey map[string]string
}

// mavenClasspath returns the runtime classpath of the Maven project in
// dir (relative to the integration package), resolved with the given -D
// properties. It is resolved once per test binary and key. Outside -short
// a missing java or mvn fails the test: CI installs both.
func mavenClasspath(t testing.TB, dir string, props ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Java and Maven; skipped with -short")
	}
	javaBin(t)
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		t.Fatalf("mvn not found: %v (.ci/run installs maven)", err)
	}
	key := dir + "|" + strings.Join(props, "|")
	classpaths.Lock()
	defer classpaths.Unlock()
	if cp, ok := classpaths.byKey[key]; ok {
		return cp
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "classpath.txt")
	args := append([]string{"-B", "-q", "-f", filepath.Join(abs, "pom.xml"),
		"dependency:build-classpath", "-Dmdep.outputFile=" + out, "-Dmdep.includeScope=runtime"}, props...)
	cmd := exec.Command(mvn, args...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mvn %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	cp := strings.TrimSpace(string(b))
	if classpaths.byKey == nil {
		classpaths.byKey = make(map[string]string)
	}
	classpaths.byKey[key] = cp
	return cp
}

// javaBin is the java launcher the JVM tests run: $JAVA_HOME/bin/java if
// set, else java on the PATH (OpenJDK 17 on CI's machines).
func javaBin(t testing.TB) string {
	t.Helper()
	if home := os.Getenv("JAVA_HOME"); home != "" {
		if p := filepath.Join(home, "bin", "java"); fileExists(p) {
			return p
		}
	}
	p, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java not found: %v (.ci/run installs a JDK)", err)
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestKafkaClasspathResolves checks that Maven resolves Apache Kafka's
// broker and tools, so the tests that run them fail here first, with
// Maven's own message, when the registry or the pom is the problem.
func TestKafkaClasspathResolves(t *testing.T) {
	cp := mavenClasspath(t, "jvm/kafka")
	for _, jar := range []string{"kafka_2.13-", "kafka-tools-", "kafka-clients-"} {
		if !strings.Contains(cp, jar) {
			t.Errorf("classpath lacks %s*.jar:\n%s", jar, cp)
		}
	}
}
