; Inno Setup 6 script: Windows installer of the one-folder Workbench build.
;
; *** NOT BUILT OR TESTED YET: written to the same layout as the tested Linux build (see packaging/README.md,
; *** "Windows"). Build on Windows 10/11 x64 after the PyInstaller build:
;
;     py -3.11 -m venv packaging\.venv-build
;     packaging\.venv-build\Scripts\python -m pip install -c packaging\constraints.txt ".[cpu,codecs]" pyinstaller==6.22.3 pyinstaller-hooks-contrib==2026.9
;     packaging\.venv-build\Scripts\python -m PyInstaller --noconfirm --distpath packaging\dist --workpath packaging\build packaging\workbench.spec
;     "C:\Program Files (x86)\Inno Setup 6\ISCC.exe" /DAppVersion=0.1.0 packaging\windows\workbench.iss
;
; Output: packaging\dist\workbench-<version>-windows-x64-setup.exe. Per-user install without admin rights by
; default (clinic accounts rarely have them); an administrator can pick "all users" in the first dialog.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "Workbench"
#define DistDir "..\dist\Workbench"
; rendered from assets/icons/workbench.svg by packaging/icons.py while the spec runs
#define IconFile "..\build\workbench\icons\workbench.ico"

[Setup]
; never change AppId: upgrades and uninstall find the installed copy by it
AppId={{6F1C2B7E-3D5A-4C8E-9B1F-2A7D4E6C8B90}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Workbench
DefaultDirName={autopf}\{#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\dist
OutputBaseFilename=workbench-{#AppVersion}-windows-x64-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\Workbench.exe
UninstallDisplayName={#AppName} {#AppVersion}
; an upgrade replaces the whole folder: no stale DLLs from the previous version stay next to the new ones
CloseApplications=yes
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; Sign the installer and Workbench.exe where a certificate exists (fewer anti-virus false positives), e.g.
; ISCC /Ssigntool="signtool.exe sign /fd sha256 /tr http://timestamp.example /td sha256 $f" and uncomment:
; SignTool=signtool

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; the previous version's bundle (libraries differ between versions)
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\Workbench.exe"; Comment: "Medical image analysis workbench"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\Workbench.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\Workbench.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
